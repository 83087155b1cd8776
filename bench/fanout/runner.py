"""The run: connect, measure memory, then every load at every connection count, servers taking turns.

Order: every server gets the largest connection count first (connected one server after the other, RSS
read before and after: memory per idle subscribed connection), then for each count, largest first (the
extra clients are closed, so nothing reconnects and no port is reused), each load — saturated, then each
paced rate — runs ``rounds`` windows per server, in alternating order, so that a neighbour's burst of
CPU moves one window rather than one server.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import sys
import time
from pathlib import Path

from bench.fanout.clients import ClientPool
from bench.fanout.frames import ID_BASE, WINDOW_SPAN
from bench.fanout.kinds import ADMIN_TOKEN, Running
from bench.fanout.procs import cpu_seconds, machine_busy_seconds, process_tree, rss_kib
from bench.fanout.profile import profile
from bench.fanout.publisher import Gate, Published, publish
from bench.fanout.report import Memory, Phase, Report, Window, describe
from bench.fanout.stats import bar_figures, prices_built

DRAIN_LIMIT = 20.0  # seconds to wait for the last frames of a window
QUIET = 1.5  # … or until nothing arrived for this long (conflated prices never arrive)
SETTLE = 2.0  # seconds after connecting or closing clients, before measuring


def _difference(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


class Progress:
    """One line per finished phase; on a terminal, a live line for the window under way."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.live = sys.stdout.isatty()

    def _clock(self) -> str:
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else math.nan
        eta = "" if math.isnan(left) else f", ~{left / 60:.1f} min left"
        return f"[{self.done}/{self.total} windows, {elapsed / 60:.1f} min{eta}]"

    def window(self, text: str) -> None:
        if self.live:
            sys.stdout.write(f"\r\033[K{self._clock()} {text}")
            sys.stdout.flush()

    def window_done(self) -> None:
        self.done += 1

    def line(self, text: str) -> None:
        if self.live:
            sys.stdout.write("\r\033[K")
        print(text, flush=True)


class Bench:
    def __init__(
        self, args: argparse.Namespace, running: dict[str, Running], pool: ClientPool, report: Report
    ) -> None:
        self.args = args
        self.running = running
        self.pool = pool
        self.report = report
        self.window_no = 0
        loads = [None, *args.rates]
        per_count = sum(len([k for k in self.available() if self._measured(k, rate)]) for rate in loads)
        self.progress = Progress(per_count * args.rounds * len(args.connections))

    def available(self) -> list[str]:
        return [name for name in self.running if self.report.servers[name].available]

    def _measured(self, name: str, rate: float | None) -> bool:
        kind = self.running[name].kind
        return kind.saturated if rate is None else kind.paced

    def fail(self, name: str, error: str) -> None:
        info = self.report.servers[name]
        info.available = False
        server = self.running[name].server
        info.error = error if not server.exited() else f"{error}; server exited: {server.logs(600)}"
        self.progress.line(f"  ! {name}: {info.error}")

    # ───────────── connections ─────────────

    async def connect(self, name: str, total: int) -> None:
        running = self.running[name]
        each = [{"count": n} for n in self.pool.split(total)]
        replies = await self.pool.call(
            "connect",
            each,
            group=name,
            url=running.url,
            dialect=running.dialect,
            sample_every=self.args.sample_every,
            stream=running.stream,
            deflate=running.kind.deflate,
        )
        connected = sum(r["connected"] for r in replies)
        if connected != total:
            errors = [e for r in replies for e in r["errors"]]
            raise RuntimeError(f"only {connected}/{total} connections subscribed: {errors[:3]}")

    async def memory(self, n: int) -> None:
        """Connect ``n`` subscribed clients to each server, one server at a time; RSS before and after."""
        for name in self.available():
            server = self.running[name].server
            memory = Memory(connections=n, rss_before_kib=rss_kib(server.pids()))
            started = time.monotonic()
            self.progress.window(f"connecting {n:,} clients to {name} …")
            try:
                await self.connect(name, n)
            except Exception as exc:
                self.fail(name, f"{type(exc).__name__}: {exc}")
                continue
            memory.connect_seconds = time.monotonic() - started
            await asyncio.sleep(SETTLE)
            pids = server.pids()
            memory.rss_after_kib, memory.processes = rss_kib(pids), len(pids)
            self.report.servers[name].memory = memory
            self.progress.line(
                f"  {name:19} {n:,} idle subscribed connections in {memory.connect_seconds:.1f} s: "
                f"{memory.kb_per_connection:.1f} KB RSS each ({memory.processes} process{'es' if memory.processes > 1 else ''})"
            )

    async def resize(self, n: int) -> None:
        """Exactly ``n`` open subscribed connections per server: extra ones closed, closed ones replaced
        (python-socketio drops clients whose pong it reads late)."""
        changed = False
        for name in self.available():
            wanted = self.pool.split(n)
            replies = await self.pool.call("shrink", [{"keep": k} for k in wanted], group=name)
            missing = [k - r["open"] for k, r in zip(wanted, replies, strict=True)]
            changed = changed or any(r.get("closed_now") for r in replies)
            if sum(missing):
                self.progress.line(f"  ! {name}: {sum(missing)} connections had closed; opening new ones")
                running = self.running[name]
                try:
                    await self.pool.call(
                        "connect",
                        [{"count": m} for m in missing],
                        group=name,
                        url=running.url,
                        dialect=running.dialect,
                        sample_every=self.args.sample_every,
                        stream=running.stream,
                        deflate=running.kind.deflate,
                    )
                except Exception as exc:
                    self.fail(name, f"could not reopen connections: {exc}")
                changed = True
        if changed:
            await asyncio.sleep(SETTLE)

    # ───────────── windows ─────────────

    def _pids(self, name: str) -> dict[str, list[int]]:
        """The processes of the server under test, of its redis-server, and of every other server."""
        tree = process_tree()
        found: dict[str, list[int]] = {"server": [], "backplane": [], "idle_servers": []}
        for other, running in self.running.items():
            for process, role in ((running.server, "server"), (running.redis, "backplane")):
                if process is not None:
                    found[role if other == name else "idle_servers"] += process.pids(tree)
        return found

    def _cpu(self, pids: dict[str, list[int]]) -> dict[str, float]:
        figures = {role: cpu_seconds(found) for role, found in pids.items()}
        figures.update(
            time=time.time(),
            clients=cpu_seconds(self.pool.pids()),
            publisher=time.process_time(),
            busy=machine_busy_seconds(),
        )
        return figures

    async def window(self, name: str, n: int, rate: float | None) -> Window:
        """Publish for warm-up + seconds; count what arrived; wait for the rest (bounded)."""
        args = self.args
        self.window_no += 1
        lo = ID_BASE + self.window_no * WINDOW_SPAN
        await self.pool.call("begin", group=name, lo=lo, hi=lo + WINDOW_SPAN)
        seconds = args.seconds / args.rounds
        target = self.running[name].target
        stats_port = self.running[name].stats_port
        built_before = await prices_built(stats_port, ADMIN_TOKEN)
        gate = None if rate is not None else Gate(self.pool.frames, n)
        publisher = asyncio.create_task(publish(target, lo, args.warmup + seconds, rate, gate))
        pids = self._pids(name)
        await asyncio.sleep(args.warmup)
        before = self._cpu(pids)
        start_frames = self.pool.frames()
        published: Published = await publisher
        end_frames = self.pool.frames()
        after = self._cpu(pids)
        built_published = await prices_built(stats_port, ADMIN_TOKEN)
        t0, t1 = before["time"], after["time"]
        drain_started = time.monotonic()
        await self._drain(name, published.sent * n)
        drain = time.monotonic() - drain_started
        built_drained = await prices_built(stats_port, ADMIN_TOKEN)
        replies = await self.pool.call("collect", group=name, last_id=published.last_id)
        measured = max(1e-3, t1 - t0)
        latencies: list[float] = []
        times = published.times
        for reply in replies:
            pairs = array.array("d")
            pairs.frombytes(reply["samples"])
            for i in range(0, len(pairs), 2):
                k = int(pairs[i]) - lo
                if 0 <= k < len(times) and t0 <= times[k] < t1:
                    latencies.append(pairs[i + 1] - times[k])
        offered = published.planned if rate else published.sent
        if published.failures:
            self.progress.line(
                f"  ! {name}: {published.failures} publishes failed: {published.first_failure}"
            )
        return Window(
            seconds=measured,
            elapsed=args.warmup + seconds,
            connections=n,
            published=published.sent,
            expected=offered * n,
            offered=offered,
            failures=published.failures,
            frames=sum(r["frames"] for r in replies),
            wire_bytes=sum(r["wire_bytes"] for r in replies),
            compressed=sum(r["compressed"] for r in replies),
            in_window=end_frames - start_frames,
            on_last=sum(r["on_last"] for r in replies),
            without_any=sum(r["without_any"] for r in replies),
            closed=sum(r["closed"] for r in replies),
            strays=sum(r["strays"] for r in replies),
            latencies=latencies,
            server_cpu=(after["server"] - before["server"]),
            clients_cpu=(after["clients"] - before["clients"]),
            publisher_cpu=(after["publisher"] - before["publisher"]),
            backplane_cpu=(after["backplane"] - before["backplane"]),
            idle_servers_cpu=(after["idle_servers"] - before["idle_servers"]),
            machine_busy=(after["busy"] - before["busy"]),
            drain_seconds=drain,
            recipients=published.recipients,
            gate_timeouts=gate.timeouts if gate else 0,
            bars_built=_difference(built_published, built_before),
            bars_built_drained=_difference(built_drained, built_before),
        )

    async def _drain(self, name: str, expected: int) -> None:
        deadline = time.monotonic() + DRAIN_LIMIT
        last, changed = -1, time.monotonic()
        while (now := time.monotonic()) < deadline:
            frames = self.pool.frames()
            if frames >= expected:
                return
            if frames != last:
                last, changed = frames, now
            elif now - changed > QUIET:
                return
            await asyncio.sleep(0.1)

    async def phase_set(self, n: int, rate: float | None) -> None:
        """Every server measured under this load: ``rounds`` windows each, in alternating order."""
        names = [name for name in self.available() if self._measured(name, rate)]
        windows: dict[str, list[Window]] = {name: [] for name in names}
        errors: dict[str, str] = {}
        load = "saturated" if rate is None else f"{rate:g}/s each"
        for r in range(self.args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                self.progress.window(f"n={n:,} {load}: {name}, round {r + 1}/{self.args.rounds}")
                if name in errors or not self.report.servers[name].available:
                    self.progress.window_done()
                    continue
                try:
                    windows[name].append(await self.window(name, n, rate))
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    if self.running[name].server.exited():
                        self.fail(name, errors[name])
                self.progress.window_done()
        for name in names:
            phase = Phase.of(name, n, rate, windows[name])
            phase.error = errors.get(name, "")
            self.report.phases.append(phase)
            self.progress.line("  " + describe(phase))

    async def run(self) -> None:
        args = self.args
        points = sorted(args.connections, reverse=True)
        await self.memory(points[0])
        for n in points:
            self.progress.line(f"n={n:,} connections per server")
            for rate in [None, *args.rates]:
                await self.resize(n)
                await self.phase_set(n, rate)
                if rate is None and args.profile and n == points[0]:
                    await self.profiles(n, args.profile)
        await self.bar_figures()

    async def bar_figures(self) -> None:
        """Each one-process Legend's bar builder at the end: what it built, wrote and published, or that
        it builds nothing (``{"enabled": false}``)."""
        for name in self.available():
            port = self.running[name].stats_port
            if port is None:
                continue
            try:
                self.report.servers[name].bars = await bar_figures(port, ADMIN_TOKEN)
            except OSError as exc:
                self.progress.line(f"  ! {name}: no bar figures from /api/ws/stats: {exc}")

    async def profiles(self, n: int, out_dir: Path) -> None:
        """One more saturated window per server with py-spy attached; not counted in the results."""
        for name in self.available():
            if not self._measured(name, None):
                continue
            pids = self.running[name].server.pids()
            if not pids:
                continue
            seconds = self.args.warmup + self.args.seconds / self.args.rounds
            self.progress.window(f"profiling {name} …")
            self.report.profiles[name] = await profile(
                pids[0], out_dir / f"profile-{name}-{n}.txt", seconds, self.window(name, n, None)
            )
            self.progress.line(f"  profiled {name} (py-spy, {seconds:.0f} s)")
