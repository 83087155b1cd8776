"""Where an idle subscribed WebSocket connection's memory goes, in a real ``legend serve``.

    python bench/bench_memory.py [--connections 2000] [--frames 25] [--json out.json]
    python bench/bench_memory.py --no-trace                  # RSS only, as bench.fanout measures it
    python bench/bench_memory.py --no-trace --env MALLOC_ARENA_MAX=1   # an allocator setting's effect

The server is ``legend serve`` itself (``legend.cli.main``), run in a child process that this script
starts with tracemalloc on (``--frames`` deep) and a SIGUSR1 handler of its own, so nothing in the server
knows it is measured. Picows clients in other processes (``bench.fanout.clients``, from many loopback
addresses, each its own user) connect and subscribe to ``ticker:BENCH``; ``--warmup`` of them first, so
that caches, interned strings and the allocator's first arenas are in the baseline, then
``--connections`` more. At both points the server collects garbage and records RSS, glibc's
``mallinfo2``, pymalloc's arenas, a census of GC-tracked objects by type and a tracemalloc snapshot;
the difference, divided by the connections added, is per connection:

- *by traceback*: the allocation sites (innermost frames first) holding most bytes per connection;
- *by line*: the same by the allocating line alone;
- *by part*: each traceback given to the first component its frames name (innermost first: Session,
  Outbox, websockets' parser, uvicorn's protocol, Litestar, asyncio …);
- *objects*: GC-tracked objects per connection by type (tuples, dicts, coroutines, frames, Futures …);
- *RSS vs tracemalloc*: what the allocator holds beyond what Python asked for (pymalloc pools and
  arenas, glibc's free lists); ``malloc_trim(0)`` and what RSS it gives back.

tracemalloc's own bookkeeping inflates RSS: the RSS per connection worth quoting is a ``--no-trace`` run's
(the same server, no tracing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: ``bench.fanout`` is imported from the checkout
    sys.path.insert(0, str(ROOT))
KB = 1000  # bytes, as bench.fanout counts them
SETTLE = 2.0  # seconds after connecting, before measuring: the last replies written, the loop idle


# ───────────── in the server's process ─────────────


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    return ctypes.CDLL("libc.so.6")


def mallinfo() -> dict[str, int]:
    """glibc's view: ``arena`` (heap from brk), ``hblkhd`` (mmapped blocks), ``uordblks`` (in use),
    ``fordblks`` (free but kept)."""
    libc = _libc()
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {name: int(getattr(info, name)) for name, _ in _MallInfo2._fields_}


def rss_kib(pid: int | None = None) -> int:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pymalloc_stats() -> dict[str, int]:
    """The totals of ``sys._debugmallocstats`` (written to fd 2, so read back through a file)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    wanted = {
        "# arenas allocated current": "arenas",
        "bytes in allocated blocks": "allocated_blocks",
        "bytes in available blocks": "available_blocks",
        "unused pools *": "unused_pools",
        "bytes lost to pool headers": "pool_headers",
        "bytes lost to quantization": "quantization",
        "bytes lost to arena alignment": "arena_alignment",
        "Total": "total",
    }
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.rpartition("=")
        key = key.strip()
        for prefix, name in wanted.items():
            if prefix in key and name not in stats:
                with contextlib.suppress(ValueError):
                    stats[name] = int(value.strip().replace(",", ""))
    return stats


def census() -> dict[str, int]:
    """GC-tracked objects by type name."""
    return dict(Counter(type(o).__qualname__ for o in gc.get_objects()))


def measure_here(out_dir: Path) -> None:
    """The SIGUSR1 handler: do what ``out_dir/command.json`` asks and write ``<name>.json`` (and the
    snapshot beside it, when tracing)."""
    command = json.loads((out_dir / "command.json").read_text())
    name = command["name"]
    gc.collect()
    result: dict[str, Any] = {"rss_kib": rss_kib(), "mallinfo": mallinfo(), "pymalloc": pymalloc_stats()}
    result["census"] = census()
    if tracemalloc.is_tracing():
        result["traced"] = tracemalloc.get_traced_memory()[0]
        result["tracemalloc_overhead"] = tracemalloc.get_tracemalloc_memory()
        tracemalloc.take_snapshot().dump(str(out_dir / f"{name}.snapshot"))
    if command.get("trim"):
        _libc().malloc_trim(0)
        result["rss_after_trim_kib"] = rss_kib()
    result["rss_end_kib"] = rss_kib()  # after the snapshot: the next measurement's baseline
    (out_dir / f"{name}.tmp").write_text(json.dumps(result))
    os.replace(out_dir / f"{name}.tmp", out_dir / f"{name}.json")


def serve_measured(out_dir: Path, frames: int, argv: list[str]) -> int:
    """``legend serve`` (``argv``: its arguments) in this process, measured on SIGUSR1."""
    if frames:
        tracemalloc.start(frames)
    signal.signal(signal.SIGUSR1, lambda *_: measure_here(out_dir))
    from legend.cli import main

    return main(argv)


# ───────────── in the script's process ─────────────


def settings_file(workdir: Path) -> Path:
    """``bench.fanout``'s settings for ``legend`` (as shipped, a quiet quote poller, long silence)."""
    from bench.fanout.kinds import kinds, legend_settings

    kind = next(k for k in kinds(1) if k.name == "legend")
    path = workdir / "legend.toml"
    path.write_text(legend_settings(kind, workdir / "data", None), encoding="utf-8")
    return path


class Server:
    """The measured ``legend serve`` in a child process (dies with this one)."""

    def __init__(self, workdir: Path, port: int, frames: int, env: dict[str, str]) -> None:
        from bench.fanout.procs import child_env

        self.dir = workdir
        self.port = port
        self.log = (workdir / "server.log").open("wb")
        argv = ["serve", "--port", str(port), "--config", str(settings_file(workdir))]
        code = (
            "import sys; from bench.fanout.procs import die_with_parent; die_with_parent(); "
            "from bench.bench_memory import serve_measured; "
            f"sys.exit(serve_measured(__import__('pathlib').Path({str(workdir)!r}), {frames}, {argv!r}))"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=workdir,
            env={**child_env(ROOT), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until ``GET /health`` answers (start-up under tracemalloc takes a minute or more)."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            url = f"http://127.0.0.1:{self.port}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2.0) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"no answer on /health in {timeout:.0f} s")

    def measure(self, name: str, trim: bool = False) -> dict[str, Any]:
        (self.dir / "command.json").write_text(json.dumps({"name": name, "trim": trim}))
        os.kill(self.process.pid, signal.SIGUSR1)
        done = self.dir / f"{name}.json"
        deadline = time.monotonic() + 600
        while not done.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no measurement {name}: {(self.dir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        result: dict[str, Any] = json.loads(done.read_text())
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


async def connect(pool: Any, url: str, count: int, group: str) -> None:
    each = [{"count": n} for n in pool.split(count)]
    replies = await pool.call("connect", each, group=group, url=url, dialect="json", sample_every=1000)
    connected = sum(r["connected"] for r in replies)
    if connected != count:
        raise RuntimeError(
            f"only {connected}/{count} subscribed: {[e for r in replies for e in r['errors']][:3]}"
        )


# Components, by the file an allocating frame is in: a traceback goes to the first one its frames name,
# innermost first (so an Outbox made by the service is the Outbox's).
PARTS = (
    ("legend/services/streaming/outbox.py", "Outbox"),
    ("legend/domain/throttle.py", "SlidingWindow / TokenBucket"),
    ("legend/services/streaming/session.py", "Session"),
    ("legend/services/streaming/subscriptions.py", "SubscriptionIndex"),
    ("legend/services/streaming/client_protocol.py", "ClientProtocol (subscribe)"),
    ("legend/services/streaming/admission.py", "admission"),
    ("legend/adapters/memory", "in-memory registry / backplane"),
    ("legend/services/streaming/service.py", "StreamingService (connect/open_session)"),
    ("legend/services/streaming/fanout.py", "Fanout"),
    ("legend/adapters/http/websocket_protocol.py", "LegendWebSocketProtocol"),
    ("legend/adapters/http/ws.py", "ws handler (/api/ws)"),
    ("legend/", "legend, other"),
    ("site-packages/websockets/", "websockets (ServerProtocol, parser, handshake)"),
    ("site-packages/uvicorn/", "uvicorn (protocol, scope, ASGI task)"),
    ("site-packages/litestar/", "Litestar (WebSocket, middleware, DI)"),
    ("msgspec/", "msgspec"),
    ("asyncio/", "event loop (uvloop, C: transport, Task, handles)"),
    ("selectors.py", "selectors (fd registration)"),
)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/legend/", "python3.11/"):
        if marker in filename:
            return (
                filename.split(marker, 1)[1]
                if marker != "/legend/"
                else "legend/" + filename.split(marker, 1)[1]
            )
    return filename.rsplit("/", 1)[-1]


def innermost_first(traceback: tracemalloc.Traceback) -> list[tracemalloc.Frame]:
    frames = list(traceback)
    # tracemalloc keeps the most recent frame first internally; Traceback iterates oldest first (3.7+)
    return frames[::-1]


def analyse(before: Path, after: Path, count: int, top: int, depth: int) -> dict[str, Any]:
    """Per connection: by traceback, by line, by part."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    skip = tracemalloc.Filter(False, tracemalloc.__file__)
    old, new = old.filter_traces([skip]), new.filter_traces([skip])
    diffs = new.compare_to(old, "traceback")
    parts: Counter[str] = Counter()
    part_blocks: Counter[str] = Counter()
    sites = []
    for diff in diffs:
        frames = innermost_first(diff.traceback)
        name = part_of_frames(frames)
        parts[name] += diff.size_diff
        part_blocks[name] += diff.count_diff
        sites.append((diff.size_diff, diff.count_diff, frames))
    sites.sort(key=lambda s: -s[0])
    by_line = new.compare_to(old, "lineno")
    total = sum(d.size_diff for d in diffs)
    return {
        "traced_bytes_per_connection": total / count,
        "blocks_per_connection": sum(d.count_diff for d in diffs) / count,
        "parts": [
            {"part": name, "bytes": size / count, "blocks": part_blocks[name] / count}
            for name, size in parts.most_common()
        ],
        "lines": [
            {
                "line": f"{_short(d.traceback[0].filename)}:{d.traceback[0].lineno}",
                "bytes": d.size_diff / count,
                "blocks": d.count_diff / count,
            }
            for d in by_line[:top]
        ],
        "tracebacks": [
            {
                "bytes": size / count,
                "blocks": blocks / count,
                "frames": [f"{_short(f.filename)}:{f.lineno}" for f in frames[:depth]],
            }
            for size, blocks, frames in sites[:top]
        ],
    }


def part_of_frames(frames: list[tracemalloc.Frame]) -> str:
    for frame in frames:
        for needle, name in PARTS:
            if needle in frame.filename:
                return name
    return "other: " + _short(frames[0].filename)


def per_connection(before: dict[str, Any], after: dict[str, Any], count: int) -> dict[str, Any]:
    """RSS, allocator and object figures of ``after - before``, per connection."""
    base = before["rss_end_kib"]  # a snapshot's own memory is freed, but glibc may keep it in RSS
    out: dict[str, Any] = {"rss_bytes": (after["rss_kib"] - base) * 1024 / count}
    if "rss_after_trim_kib" in after:
        out["rss_trimmed_bytes"] = (after["rss_after_trim_kib"] - base) * 1024 / count
    for key in ("arena", "hblkhd", "uordblks", "fordblks"):
        out[f"malloc_{key}"] = (after["mallinfo"][key] - before["mallinfo"][key]) / count
    for key, value in after["pymalloc"].items():
        out[f"pymalloc_{key}"] = (value - before["pymalloc"].get(key, 0)) / count
    if "traced" in after:
        out["traced_bytes"] = (after["traced"] - before["traced"]) / count
        out["tracemalloc_overhead"] = (after["tracemalloc_overhead"] - before["tracemalloc_overhead"]) / count
    objects = Counter(after["census"])
    objects.subtract(before["census"])
    out["objects"] = {name: n / count for name, n in objects.most_common(25) if n > 0}
    return out


def print_report(report: dict[str, Any]) -> None:
    figures = report["figures"]
    n = report["connections"]
    print(
        f"\n{n:,} idle subscribed connections ({report['warmup']} before the baseline); per connection (KB: 1,000 bytes):"
    )
    if "traced_bytes" in figures:  # tracing's own memory comes and goes with the snapshots
        print("  (RSS, glibc and pymalloc figures of a traced run are tracemalloc's: see --no-trace)")
    print(f"  RSS                 {figures['rss_bytes'] / KB:8.2f} KB")
    if "rss_trimmed_bytes" in figures:
        print(f"  RSS after malloc_trim(0) {figures['rss_trimmed_bytes'] / KB:8.2f} KB")
    if "traced_bytes" in figures:
        print(
            f"  tracemalloc         {figures['traced_bytes'] / KB:8.2f} KB (its own overhead: "
            f"{figures['tracemalloc_overhead'] / KB:.2f} KB, in RSS too)"
        )
    print(
        f"  glibc in use        {figures['malloc_uordblks'] / KB:8.2f} KB, free kept "
        f"{figures['malloc_fordblks'] / KB:.2f} KB, brk heap {figures['malloc_arena'] / KB:.2f} KB, "
        f"mmapped {figures['malloc_hblkhd'] / KB:.2f} KB"
    )
    print(
        f"  pymalloc blocks     {figures.get('pymalloc_allocated_blocks', 0) / KB:8.2f} KB, free in pools "
        f"{figures.get('pymalloc_available_blocks', 0) / KB:.2f} KB, unused pools "
        f"{figures.get('pymalloc_unused_pools', 0) / KB:.2f} KB, arenas {figures.get('pymalloc_arenas', 0):.3f}"
    )
    print("  GC-tracked objects: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["objects"].items()))
    traced = report.get("traced")
    if not traced:
        return
    print(
        f"\nBy part ({traced['traced_bytes_per_connection']:.0f} B, "
        f"{traced['blocks_per_connection']:.1f} blocks per connection):"
    )
    for row in traced["parts"]:
        if abs(row["bytes"]) >= 8:
            print(f"  {row['bytes']:8.0f} B {row['blocks']:6.1f} blocks  {row['part']}")
    print("\nBy allocating line:")
    for row in traced["lines"]:
        print(f"  {row['bytes']:8.0f} B {row['blocks']:6.1f} blocks  {row['line']}")
    print("\nBy traceback (innermost first):")
    for row in traced["tracebacks"]:
        print(f"  {row['bytes']:8.0f} B {row['blocks']:6.1f} blocks  " + " < ".join(row["frames"]))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.fanout.clients import ClientPool
    from bench.fanout.procs import free_port, raise_fd_limit

    raise_fd_limit()
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server = Server(workdir, port, 0 if args.no_trace else args.frames, env)
        pool = ClientPool(args.client_processes)
        try:
            server.wait_ready()
            url = f"ws://127.0.0.1:{port}/api/ws?user_id={{index}}"
            await connect(pool, url, args.warmup, "legend")
            await asyncio.sleep(SETTLE)
            before = server.measure("before")
            started = time.monotonic()
            await connect(pool, url, args.connections, "legend")  # same group: new addresses
            connect_seconds = time.monotonic() - started
            await asyncio.sleep(SETTLE)
            after = server.measure("after", trim=args.trim)
            report: dict[str, Any] = {
                "connections": args.connections,
                "warmup": args.warmup,
                "frames": 0 if args.no_trace else args.frames,
                "env": env,
                "connect_seconds": connect_seconds,
                "figures": per_connection(before, after, args.connections),
            }
            if not args.no_trace:
                report["traced"] = analyse(
                    workdir / "before.snapshot",
                    workdir / "after.snapshot",
                    args.connections,
                    args.top,
                    args.depth,
                )
            return report
        finally:
            pool.stop()
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200, help="connected before the baseline")
    parser.add_argument("--frames", type=int, default=25, help="tracemalloc traceback depth")
    parser.add_argument("--no-trace", action="store_true", help="no tracemalloc: RSS as shipped")
    parser.add_argument("--trim", action="store_true", help="also RSS after malloc_trim(0)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="server environment")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--depth", type=int, default=6, help="frames shown per traceback")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
