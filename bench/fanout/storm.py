"""The restart storm (issue 23): N subscribed clients, the server restarted, every client back and resumed.

    .venv/bin/python -m bench.fanout --storm                        # 18,000 clients
    .venv/bin/python -m bench.fanout --storm --connections 300      # seconds

One ``legend serve`` as shipped (budget 10/s, the shipped connection limits and drain) on a redis-server
of the bench's own, so that sequence numbers and history outlive the process. The clients
(``storm_clients``) subscribe to ``ticker:BENCH`` from many loopback addresses (40 an address) and client
processes; a publisher POSTs ``--storm-rate`` prices a second (2: within the budget, so no price is
conflated and every ``seq`` is owed to every client). After ``--storm-before`` seconds the server process
gets SIGTERM (it drains: 1001 with ``reconnect_after_ms``); once it has exited, a new one starts on the
same port. The clients come back with the browser client's backoff and resume with ``since``.

Figures: time from SIGTERM until every client has resumed; clients gap-free (every ``seq`` from before the
publisher's first acknowledged price up to the last one arrived exactly once, in order) or told of a hole
(``gap``, ``"recovered": false``); connects refused by the limits (4429, 1013 full, HTTP statuses);
connects that found nothing listening; reconnect times (close to resumed ``history``). A price POSTed
while no server answers (or one that answers an error) is not accepted: it gets no ``seq``, no client is
owed it, and it is counted as not accepted (the publisher does not retry it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.fanout import frames
from bench.fanout.clients import ClientPool
from bench.fanout.kinds import ADMIN_TOKEN, Kind, legend_settings
from bench.fanout.procs import (
    HOST,
    ServerProcess,
    child_env,
    free_port,
    process_tree,
    raise_fd_limit,
    start_redis,
    wait_redis,
)
from bench.fanout.publisher import HttpLane
from bench.fanout.report import percentile
from bench.fanout.storm_clients import storm_worker_main

DEFAULT_CLIENTS = 18_000
TARGET_SECONDS = 60.0  # issue 23: 100% resumed gap-free within 60 s
KIND = Kind(
    "legend-storm",
    "Legend as shipped (budget 10/s, shipped limits and drain), one process on Redis, restarted",
    family="legend",
    saturated=False,
    paced=True,
    redis=True,
)


@dataclass
class Prices:
    """What the publisher sent: the seqs the server acknowledged, and how many it did not accept."""

    acknowledged: list[int] = field(default_factory=list)
    not_accepted: int = 0


@dataclass
class StormResult:
    clients: int
    client_processes: int
    rate: float
    subscribed_seconds: float = 0.0
    exited_seconds: float = 0.0  # SIGTERM to the old process gone
    ready_seconds: float = 0.0  # SIGTERM to the new one answering /health
    all_resumed_seconds: float | None = None  # SIGTERM to the last client's resumed history
    resumed: int = 0
    gap_free: int = 0
    told: int = 0
    silent_holes: int = 0
    seqs_missed: int = 0
    with_repeats: int = 0
    not_on_final: int = 0
    refused_clients: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # connects that failed otherwise (timeouts …)
    unreachable: int = 0
    attempts: int = 0
    max_attempts: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)
    hole_at: dict[str, int] = field(default_factory=dict)  # clients' holes by where they showed
    settings: list[str] = field(default_factory=list)  # --storm-set lines added to the shipped settings
    reconnect_p50: float = 0.0
    reconnect_p99: float = 0.0
    reconnect_max: float = 0.0
    resume_after_sigterm_p50: float = 0.0
    resume_after_sigterm_p99: float = 0.0
    acknowledged: int = 0
    not_accepted: int = 0
    final_seq: int = 0
    logs: list[str] = field(default_factory=list)  # where the two server processes' logs were kept

    @property
    def met(self) -> bool:
        return (
            self.gap_free == self.clients
            and self.all_resumed_seconds is not None
            and self.all_resumed_seconds <= TARGET_SECONDS
        )


async def publish_prices(port: int, rate: float, prices: Prices, stop: asyncio.Event) -> None:
    """``rate`` prices a second, each on schedule; one not acknowledged with a ``seq`` is not accepted."""
    lane: HttpLane | None = None
    started = time.monotonic()
    k = 0
    try:
        while not stop.is_set():
            due = started + k / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            k += 1
            lane, seq = await _post(port, lane, k)
            if seq is None:
                prices.not_accepted += 1
            else:
                prices.acknowledged.append(seq)
    finally:
        if lane is not None:
            lane.close()


async def _post(port: int, lane: HttpLane | None, k: int) -> tuple[HttpLane | None, int | None]:
    """One price: the lane to use next (None: open a new one) and the price's seq (None: not accepted)."""
    try:
        async with asyncio.timeout(5):
            if lane is None:
                lane = await HttpLane.open(port, "/api/ws/broadcast/price", _HEADERS)
            status, answer = await lane.post(frames.legend_body(frames.ID_BASE + k, k, time.time()))
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        if lane is not None:
            lane.close()
        return None, None
    return lane, int(json.loads(answer)["seq"]) if status == 200 else None


_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def publish_final(port: int, deadline: float) -> int:
    """One more price, retried until acknowledged: the seq every client must end on."""
    while time.monotonic() < deadline:
        lane, seq = await _post(port, None, 10**6)
        if lane is not None:
            lane.close()
        if seq is not None:
            return seq
        await asyncio.sleep(0.2)
    raise RuntimeError("the restarted server acknowledged no price")


def with_settings(text: str, assignments: list[str]) -> str:
    """The settings file with ``section.key=value`` lines (TOML values) set, replacing the bench's own."""
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, {})
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[current][key.strip()] = value.strip()
    for assignment in assignments:
        name, value = assignment.split("=", 1)
        section, key = name.strip().rsplit(".", 1)
        sections.setdefault(section, {})[key] = value.strip()
    out: list[str] = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {value}" for key, value in values.items())
    return "\n".join(out) + "\n"


def legend_pid(server: ServerProcess) -> int:
    """The ``legend serve`` process under the keeper (SIGTERM goes to it, not to the keeper, whose
    own SIGTERM would kill the group after 3 s: a restart drains as a deploy does)."""
    children = process_tree().get(server.process.pid, [])
    if not children:
        raise RuntimeError(f"{server.name} has no process: {server.logs()}")
    return children[0]


def _wait_gone(pid: int) -> None:
    """Until ``pid`` has exited (a zombie awaiting its keeper counts as gone: its sockets are closed)."""
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)


async def storm(args: argparse.Namespace, workdir: Path) -> StormResult:
    n = max(args.connections)
    limit = raise_fd_limit()
    processes = max(args.client_processes, 2, math.ceil(n / (limit - 1000)))
    result = StormResult(clients=n, client_processes=processes, rate=args.storm_rate)
    redis = start_redis("storm-redis", workdir)
    servers: list[ServerProcess] = []
    pool: ClientPool | None = None
    stop = asyncio.Event()
    try:
        wait_redis(redis)
        port = free_port()
        config = workdir / "legend-storm.toml"
        config.write_text(
            with_settings(legend_settings(KIND, workdir / "storm-data", redis.port), args.storm_set),
            encoding="utf-8",
        )
        result.settings = list(args.storm_set)
        argv = [sys.executable, "-m", "legend", "serve", "--port", str(port), "--config", str(config)]
        env = child_env(args.legend_root)
        servers.append(ServerProcess("legend-storm-1", argv, port, workdir, env))
        await asyncio.to_thread(servers[0].wait_ready)
        pool = ClientPool(processes, storm_worker_main)
        url = f"ws://{HOST}:{port}/api/ws?user_id={{index}}"
        started = time.monotonic()
        replies = await pool.call("connect", [{"count": c} for c in pool.split(n)], url=url)
        result.subscribed_seconds = time.monotonic() - started
        subscribed = sum(r["subscribed"] for r in replies)
        print(f"  {subscribed:,}/{n:,} subscribed in {result.subscribed_seconds:.1f} s", flush=True)
        if subscribed != n:
            refusals = [r["refusals"] for r in replies]
            unreachable = sum(r["unreachable"] for r in replies)
            raise RuntimeError(
                f"only {subscribed:,} of {n:,} clients subscribed (refused: {refusals}, "
                f"unreachable: {unreachable}): {servers[0].logs(800)}"
            )

        prices = Prices()
        publisher = asyncio.create_task(publish_prices(port, args.storm_rate, prices, stop))
        await asyncio.sleep(args.storm_before)
        if not prices.acknowledged:
            raise RuntimeError("no price was acknowledged before the restart")
        old = legend_pid(servers[0])
        sigterm = time.time()
        os.kill(old, signal.SIGTERM)
        print(f"  SIGTERM to legend serve (pid {old}) with {len(prices.acknowledged)} prices out", flush=True)
        await asyncio.to_thread(_wait_gone, old)
        result.exited_seconds = time.time() - sigterm
        servers.append(ServerProcess("legend-storm-2", argv, port, workdir, env))
        await asyncio.to_thread(servers[1].wait_ready)
        result.ready_seconds = time.time() - sigterm
        print(
            f"  old process gone {result.exited_seconds:.1f} s after SIGTERM, "
            f"new one ready at {result.ready_seconds:.1f} s",
            flush=True,
        )
        while time.time() - sigterm < args.storm_timeout:
            status = await pool.call("status")
            result.resumed = sum(s["resumed"] for s in status)
            if result.resumed == n:
                break
            if int(time.time() - sigterm) % 10 == 0:
                phases: dict[str, int] = {}
                for s in status:
                    for phase, count in s["phases"].items():
                        phases[phase] = phases.get(phase, 0) + count
                    for ending, count in s["ended"].items():
                        phases[f"ended ({ending})"] = phases.get(f"ended ({ending})", 0) + count
                print(
                    f"  {time.time() - sigterm:5.1f} s: {result.resumed:,} resumed; the others: {phases}",
                    flush=True,
                )
            await asyncio.sleep(0.5)
        print(f"  {result.resumed:,}/{n:,} resumed {time.time() - sigterm:.1f} s after SIGTERM", flush=True)
        await asyncio.sleep(3.0)  # a few more prices after everyone is back
        stop.set()
        await publisher
        final = await publish_final(port, time.monotonic() + 20)
        prices.acknowledged.append(final)
        result.final_seq = final
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(s["on_final"] for s in await pool.call("status", final=final)) == n:
                break
            await asyncio.sleep(0.5)
        collected = await pool.call("collect", final=final, first_acknowledged=prices.acknowledged[0])
        _fill(result, collected, prices, sigterm)
    finally:
        if args.json:
            for process in servers:
                kept = args.json.with_name(f"{args.json.stem}.{process.name}.log")
                with contextlib.suppress(OSError):
                    kept.write_bytes(process.log_path.read_bytes())
                    result.logs.append(str(kept))
        stop.set()
        if pool is not None:
            pool.stop()
        for process in (*servers, redis):
            process.stop()
    return result


def _fill(result: StormResult, collected: list[dict[str, Any]], prices: Prices, sigterm: float) -> None:
    for key in ("gap_free", "told", "silent_holes", "seqs_missed", "with_repeats", "not_on_final"):
        setattr(result, key, sum(c[key] for c in collected))
    for key in ("refused_clients", "unreachable", "attempts"):
        setattr(result, key, sum(c[key] for c in collected))
    result.max_attempts = max(c["max_attempts"] for c in collected)
    for c in collected:
        for name, count in c["refusals"].items():
            result.refusals[name] = result.refusals.get(name, 0) + count
        for name, count in c["failed"].items():
            result.failed[name] = result.failed.get(name, 0) + count
        for name, count in c["hole_at"].items():
            result.hole_at[name] = result.hole_at.get(name, 0) + count
        for name, count in c["close_codes"].items():
            result.close_codes[name] = result.close_codes.get(name, 0) + count
    reconnects = sorted(s for c in collected for s in c["reconnect_seconds"])
    resumed = sorted(t - sigterm for c in collected for t in c["resumed_at"])
    result.resumed = len(resumed)
    if resumed and len(resumed) == result.clients:
        result.all_resumed_seconds = resumed[-1]
    if reconnects:
        result.reconnect_p50 = percentile(reconnects, 50)
        result.reconnect_p99 = percentile(reconnects, 99)
        result.reconnect_max = reconnects[-1]
    if resumed:
        result.resume_after_sigterm_p50 = percentile(resumed, 50)
        result.resume_after_sigterm_p99 = percentile(resumed, 99)
    result.acknowledged = len(prices.acknowledged)
    result.not_accepted = prices.not_accepted


def describe(r: StormResult) -> str:
    pct = 100 * r.gap_free / r.clients if r.clients else 0.0
    refused = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.refusals.items())) or "none"
    resumed = f"{r.all_resumed_seconds:.1f} s" if r.all_resumed_seconds is not None else "not all"
    lines = [
        f"Restart storm: {r.clients:,} clients over {r.client_processes} client processes, "
        f"{r.rate:g} prices/s on ticker:BENCH; settings as shipped"
        + (f" but {', '.join(r.settings)}" if r.settings else ""),
        f"  subscribed before the restart in {r.subscribed_seconds:.1f} s",
        f"  SIGTERM -> old process gone {r.exited_seconds:.1f} s, new process ready {r.ready_seconds:.1f} s",
        f"  resumed: {r.resumed:,}/{r.clients:,}; 100% resumed after SIGTERM: {resumed} "
        f"(p50 {r.resume_after_sigterm_p50:.1f} s, p99 {r.resume_after_sigterm_p99:.1f} s)",
        f"  reconnect time, close to resumed history: p50 {r.reconnect_p50:.1f} s, p99 {r.reconnect_p99:.1f} s, "
        f"max {r.reconnect_max:.1f} s",
        f"  gap-free: {r.gap_free:,}/{r.clients:,} ({pct:.2f}%); told of a hole (gap / recovered false): "
        f"{r.told:,}; silent holes: {r.silent_holes:,} ({r.seqs_missed:,} seqs); with repeats: "
        f"{r.with_repeats:,}; not on the last price: {r.not_on_final:,}",
        f"  refused by limits: {r.refused_clients:,} clients ({refused}); connects that found nothing "
        f"listening: {r.unreachable:,}; reconnect attempts {r.attempts:,} (at most {r.max_attempts} a client)",
        f"  other connects that did not open: {dict(sorted(r.failed.items())) or 'none'}",
        f"  closes seen: {dict(sorted(r.close_codes.items()))}",
        f"  holes by where they showed (clients): {dict(sorted(r.hole_at.items())) or 'none'}",
        f"  prices acknowledged {r.acknowledged:,} (last seq {r.final_seq}), not accepted "
        f"{r.not_accepted:,} (POSTed while no server took them)",
        f"  target (issue 23): 100% resumed gap-free within {TARGET_SECONDS:.0f} s: "
        + ("met" if r.met else "NOT met"),
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    import tempfile

    import uvloop

    print(
        f"restart storm: {max(args.connections):,} clients; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="legend-storm-") as tmp:
        result = uvloop.run(storm(args, Path(tmp)))
    print(describe(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result) | {"met": result.met}, indent=2), encoding="utf-8")
        print(f"figures: {args.json}")
    return 0
