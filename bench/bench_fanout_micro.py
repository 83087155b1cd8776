"""The fan-out hot path in process: microseconds per delivery, N sessions on fake transports, one envelope
handed to ``StreamingService.deliver`` again and again (what the backplane does for each message).

    python bench/bench_fanout_micro.py [--sessions 1000] [--messages 200] [--rounds 7]
    python bench/bench_fanout_micro.py --baseline /tmp/old-checkout     # A/B against another checkout
    python bench/bench_fanout_micro.py --memory 5000                    # bytes a subscription filter adds

No socket, no event loop turn, no encoding: only ``deliver`` and the outbox, so a change to either shows
here long before it shows in ``python -m bench.fanout``. Cases:

- ``write``: a price, budget raised (as ``legend-max``): every delivery is a direct socket write;
- ``socket``: the same through what ``legend serve`` writes with: ``SocketTransport`` over a real
  ``LegendWebSocketProtocol`` whose transport is a C-level sink (no syscall): the adapter's share too;
- ``shipped``: as ``socket``, the shipped budget (10/s), each round's first price to every session (the
  budget check of a connection within its budget, as at 10 prices/s);
- ``conflate``: a price, the shipped budget (10/s) spent: every delivery replaces the pending price;
- ``reliable``: a pattern alert, budget raised: must-deliver, direct writes;
- ``filtered``: the same alert, the sessions subscribed over 50 distinct filters that all match it
  (``bench.fanout.frames.filters``, as ``python -m bench.fanout --filters 50``): the alert is decoded once
  and each filter evaluated once per delivery call (issue 22). Beside ``reliable`` it gives the filters'
  cost per delivery; a checkout without filters (``--baseline``) shows ``nan``.

``--memory N``: what a filter adds to a subscription, in Python objects: N sessions on fake transports
subscribed to ``patterns`` without a filter, then (a fresh service) with one of the 50 filters each;
tracemalloc counts what the subscribes allocate and still hold; (filtered - unfiltered) / N is the bytes
per connection of a filter (the RSS difference of ``bench.fanout`` is the same thing seen through the
allocator, and noisier). The largest holders of the filtered run are listed by source line.

Each round runs in a process of its own, and times each case three times (the fastest counts); with
``--baseline`` the rounds of the two checkouts alternate, so both see the same neighbours. Figures are the
median over the rounds and the best round, in µs per delivery (one message to one session), and the
ratios of this checkout to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CASES = ("write", "socket", "shipped", "conflate", "reliable", "filtered")
FILTERS = 50  # distinct filters of the filtered case
REPEATS = 3  # timed runs per case and round: the fastest counts (the others met a noisy neighbour)


class CountingTransport:
    """A socket that always has room: ``write`` takes every frame."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames = 0

    def write(self, text: str) -> bool:
        self.frames += 1
        return True

    async def send_text(self, text: str) -> None:
        self.frames += 1

    async def close(self, code: int, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass


def _filter_subscribes(count: int) -> list[str]:
    """The bench's patterns subscribes over ``count`` filters, from this checkout's ``bench/fanout/frames.py``
    (loaded by path: ``legend`` may come from a baseline checkout, the filters do not)."""
    spec = importlib.util.spec_from_file_location("_bench_frames", ROOT / "bench" / "fanout" / "frames.py")
    assert spec is not None and spec.loader is not None
    frames = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frames)
    return [frame.decode() for frame in frames.pattern_subscribes(count)]


def _has_filters() -> bool:
    try:
        import legend.domain.filters  # noqa: F401
    except ImportError:
        return False
    return True


def _use_checkout(root: Path) -> None:
    """Import ``legend`` from ``root``, not from the checkout the virtualenv has installed (editable)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, str(root))


def _service(budget: int) -> Any:
    """A StreamingService on an in-memory backplane, as the server composes it (whatever the checkout)."""
    try:
        from legend.adapters.clock.system import SystemClock
        from legend.adapters.memory.backplane import InMemoryBackplane
    except ImportError:  # a checkout from before the adapters were grouped by port (--baseline)
        from legend.adapters.memory_backplane import InMemoryBackplane  # type: ignore[no-redef]
        from legend.adapters.system_clock import SystemClock  # type: ignore[no-redef]
    from legend.domain.channels import ChannelRegistry
    from legend.domain.stats import Counters

    try:
        from legend.services.streaming.limits import Limits
        from legend.services.streaming.service import StreamingService
    except ImportError:  # a checkout from before the services left legend/domain/ (--baseline)
        try:
            from legend.domain.streaming.limits import Limits  # type: ignore[no-redef]
            from legend.domain.streaming.service import StreamingService  # type: ignore[no-redef]
        except ImportError:  # a checkout from before domain/streaming became a package
            from legend.domain.streaming import Limits, StreamingService  # type: ignore[no-redef]

    clock, backplane, registry, counters = SystemClock(), InMemoryBackplane(), ChannelRegistry(), Counters()
    limits = Limits(max_messages_per_second=budget, max_pending_messages=10**9, max_subscriptions=10)
    return StreamingService(backplane, registry, clock, limits, counters)


class SinkTransport:
    """What uvloop's transport is to the protocol, with C-level methods and no syscall: ``write`` drops
    the frame (a deque of no length), ``is_closing`` is ``bool()`` (False)."""

    def __init__(self) -> None:
        from collections import deque

        self.write = deque(maxlen=0).append
        self.is_closing = bool

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def _socket_transport() -> Any:
    """``SocketTransport`` over a ``LegendWebSocketProtocol`` as ``legend serve`` makes it (deflate not
    negotiated: the bench's clients offer none), on a ``SinkTransport``."""
    import uvicorn
    from uvicorn.server import ServerState

    from legend.adapters.http.websocket_protocol import protocol_class
    from legend.adapters.http.ws import SocketTransport

    global _CONFIG
    if _CONFIG is None:
        _CONFIG = uvicorn.Config(lambda *args: None, ws_per_message_deflate=True)
        _CONFIG.load()
    protocol = protocol_class(3.0)(_CONFIG, ServerState(), {})
    protocol.connection_made(SinkTransport())
    protocol.handshake_complete = True
    return SocketTransport(protocol)


_CONFIG: Any = None


async def _measure(case: str, sessions: int, messages: int) -> float:
    """Seconds per delivery in one run of ``case`` (nan: the checkout has no filters)."""
    from legend.domain.envelope import seal

    if case == "filtered" and not _has_filters():
        return math.nan
    streaming = _service(10 if case in ("conflate", "shipped") else 1_000_000_000)
    requests = None
    if case == "filtered":
        requests = _filter_subscribes(FILTERS)
    if case in ("reliable", "filtered"):
        request = '{"type":"subscribe","channel":"patterns"}'  # the client's frame
        body = (
            b'{"type":"pattern_alert","ticker":"BENCH","pattern_type":"VCP","score":50.0,"entry_price":100.0,'
            b'"stop_price":99.0,"target_price":102.0,"risk_reward_ratio":2.0,"message":"1",'
            b'"timestamp":"2025-11-18T10:30:00.000Z","channel":"patterns"}'
        )
        envelope = seal("patterns", 1, "pattern_alert", body)
    else:
        request = '{"type":"subscribe","channel":"ticker","ticker":"BENCH"}'
        body = b'{"type":"price_update","ticker":"BENCH","price":10.0,"volume":1000,"channel":"ticker:BENCH"}'
        envelope = seal("ticker:BENCH", 1, "price_update", body, key="BENCH")
    transports: list[Any] = []
    for index in range(sessions):
        transport = _socket_transport() if case in ("socket", "shipped") else CountingTransport()
        transports.append(transport)
        session = streaming.open_session(transport, f"user{index}")
        await streaming.handle_frame(session, requests[index % len(requests)] if requests else request)
    replies = sum(getattr(t, "frames", 0) for t in transports)  # subscription, history
    deliver = getattr(
        streaming, "fanout", streaming
    ).deliver  # what the backplane calls (before: the service)
    if case == "shipped":  # each timed price is a new one, 0.2 s after the last: within the budget
        return await _within_budget(streaming, deliver, body, messages)
    for _ in range(20):  # warm up; for "conflate" this also spends the budget
        deliver(envelope)
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(messages):
            deliver(envelope)
        best = min(best, time.perf_counter() - started)
    if case in ("reliable", "filtered"):  # must-deliver: every session got every alert (filters all match)
        delivered = sum(t.frames for t in transports) - replies
        assert delivered == sessions * (20 + REPEATS * messages), (case, delivered)
    return best / (messages * sessions)


async def _within_budget(streaming: Any, deliver: Any, body: bytes, messages: int) -> float:
    """Seconds per delivery of prices that each fit every session's 10/s budget: the service's clock
    is moved on 0.2 s before each price (a fake clock: nothing sleeps)."""
    from legend.domain.envelope import seal

    fanout = getattr(streaming, "fanout", streaming)
    now = [fanout.clock.monotonic()]
    fanout.clock = type("Clock", (), {"monotonic": lambda self: now[0]})()
    sessions = len(streaming.sessions) if hasattr(streaming, "sessions") else 1
    best = float("inf")
    seq = 1
    for _ in range(REPEATS):
        spent = 0.0
        for _ in range(messages // 10 or 1):
            seq += 1
            now[0] += 0.2
            envelope = seal("ticker:BENCH", seq, "price_update", body, key="BENCH")
            started = time.perf_counter()
            deliver(envelope)
            spent += time.perf_counter() - started
        best = min(best, spent / (messages // 10 or 1))
    return best / sessions


async def _subscribed_bytes(sessions: int, requests: list[str]) -> tuple[int, Any]:
    """Bytes that ``sessions`` subscribes (request ``i % len``) allocate and keep, and a snapshot of them."""
    streaming = _service(1_000_000_000)
    opened = [streaming.open_session(CountingTransport(), f"user{i}") for i in range(sessions)]
    gc.collect()
    tracemalloc.start(1)
    before_snapshot = tracemalloc.take_snapshot()
    before = tracemalloc.get_traced_memory()[0]
    for index, session in enumerate(opened):
        await streaming.handle_frame(session, requests[index % len(requests)])
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    stats = tracemalloc.take_snapshot().compare_to(before_snapshot, "lineno")
    tracemalloc.stop()
    return after - before, stats


def memory(sessions: int) -> dict[str, Any]:
    """Bytes per connection of a subscription to ``patterns``, without and with a filter (one of 50)."""
    plain, _ = asyncio.run(_subscribed_bytes(sessions, ['{"type":"subscribe","channel":"patterns"}']))
    filtered, stats = asyncio.run(_subscribed_bytes(sessions, _filter_subscribes(FILTERS)))
    return {
        "sessions": sessions,
        "filters": FILTERS,
        "unfiltered_bytes_per_connection": plain / sessions,
        "filtered_bytes_per_connection": filtered / sessions,
        "filter_bytes_per_connection": (filtered - plain) / sessions,
        "top": [
            (
                f"{s.traceback[0].filename.split('/legend/')[-1]}:{s.traceback[0].lineno}",
                s.size_diff / sessions,
            )
            for s in stats[:8]
        ],
    }


def _one_round(arguments: argparse.Namespace) -> dict[str, float]:
    return {case: asyncio.run(_measure(case, arguments.sessions, arguments.messages)) * 1e6 for case in CASES}


def _round_in_subprocess(root: Path, arguments: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one-round",
        "--checkout",
        str(root),
        "--sessions",
        str(arguments.sessions),
        "--messages",
        str(arguments.messages),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="deliveries timed per case and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alternately")
    parser.add_argument(
        "--memory",
        type=int,
        metavar="N",
        help="instead: tracemalloc bytes per connection of a subscription filter, over N sessions",
    )
    parser.add_argument("--checkout", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory:
        figures = memory(arguments.memory)
        print(
            f"{figures['sessions']} sessions subscribed to patterns (tracemalloc, bytes per connection): "
            f"unfiltered {figures['unfiltered_bytes_per_connection']:.0f}, over {FILTERS} filters "
            f"{figures['filtered_bytes_per_connection']:.0f}: a filter adds "
            f"{figures['filter_bytes_per_connection']:.0f} B ({figures['filter_bytes_per_connection'] / 1000:.2f} KB)"
        )
        print("largest holders of the filtered subscribes (bytes per connection):")
        for where, size in figures["top"]:
            print(f"  {size:8.0f}  {where}")
        print(json.dumps(figures))
        return
    if arguments.one_round:
        _use_checkout(arguments.checkout)
        print(json.dumps(_one_round(arguments)))
        return
    roots = {"this": ROOT, **({"baseline": arguments.baseline.resolve()} if arguments.baseline else {})}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
    for _ in range(arguments.rounds):
        for name, root in roots.items():
            runs[name].append(_round_in_subprocess(root, arguments))
    print(
        f"{arguments.sessions} sessions, {arguments.messages} messages per case, {arguments.rounds} rounds "
        "(µs per delivery: median of the rounds / best round)"
    )
    figures: dict[str, dict[str, dict[str, float]]] = {
        name: {
            case: {
                "median": statistics.median(run[case] for run in results),
                "best": min(run[case] for run in results),
            }
            for case in CASES
        }
        for name, results in runs.items()
    }
    print(
        f"{'case':<10}"
        + "".join(f"{name:>20}" for name in roots)
        + ("   this/baseline" if arguments.baseline else "")
    )
    for case in CASES:
        row = f"{case:<10}"
        for name in roots:
            row += f"{figures[name][case]['median']:>12.3f} / {figures[name][case]['best']:.3f}"
        if arguments.baseline:
            ratios = [
                figures["this"][case][kind] / figures["baseline"][case][kind] for kind in ("median", "best")
            ]
            row += f"   {ratios[0]:.3f} / {ratios[1]:.3f}"
        print(row)
    summary: dict[str, Any] = {"sessions": arguments.sessions, "us_per_delivery": figures}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
