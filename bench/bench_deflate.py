"""Per-message deflate (RFC 7692): bytes on the wire and server CPU per fan-out, for plain frames, deflate
compressed once per message (the frame shared by every connection) and deflate compressed by every
connection for itself (uvicorn's extension with context takeover: Legend before).

    python bench/bench_deflate.py [--connections 1000] [--messages 200] [--rounds 5]
    python bench/bench_deflate.py --baseline /tmp/base    # the same cases on another checkout, alternately

Messages are real: the project's own publisher and fan-out make them, from the minute prices of
``../shared/data/SP500_NOV2019_IDay.csv`` (``--prices``; a made-up walk when the file is absent): price
updates, closed 1-minute bars, pattern alerts, alert triggers, a market status, and the replies a
connection gets (its ``connection`` message, a subscription, a history of 100 prices and an empty one, an
error, a pong).

- **bytes**: what each kind's messages take on the wire, frame headers included: the plain frame, the
  frame compressed alone (what every deflate connection now gets), and what one connection subscribed to
  that kind's stream got from its own compressor with context takeover (before): history shared across
  its messages compresses better, but has to be made and kept per connection. Below the floor
  (``server.ws_deflate_min_bytes``) a text goes uncompressed: the table says what compressing would save.
- **fan-out**: ``--connections`` real ``LegendWebSocketProtocol`` instances (uvicorn's handshake run
  in process through ``data_received``, a browser's offer ``permessage-deflate; client_max_window_bits``
  or none) on in-process transports that only count bytes; each price update is written to all of them
  with ``SocketTransport.write``, as fan-out does. Per case: µs per fan-out (one message to every connection), per
  delivery, bytes per delivery, the ratio to ``plain`` in the same round, and the bytes each connection
  holds, open and written 20 messages (tracemalloc over 500 connections, the handshake's included: zlib
  allocates through Python, so a compressor kept per connection shows). The kernel's share of a real socket write (a few
  µs each, the same number of writes in every case, fewer bytes with deflate) is not in these figures.

Each case of each round runs in a process of its own and is timed three times (the fastest counts); with
``--baseline`` the rounds of the two checkouts alternate. A checkout without shared
deflate frames shows ``nan`` for ``shared``; its ``own`` is its deflate as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRICES = ("../shared/data/SP500_NOV2019_IDay.csv", "../../shared/data/SP500_NOV2019_IDay.csv")
CASES = ("plain", "shared", "own")
REPEATS = 3  # timed runs per case and round: the fastest counts (the others met a noisy neighbour)
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
# What uvicorn negotiates when it is left to itself (Legend before): context takeover per connection.
UVICORN_FACTORY: dict[str, Any] = {
    "server_max_window_bits": 12,
    "client_max_window_bits": 12,
    "compress_settings": {"memLevel": 5},
}


# ───────────── real messages, made by the project's publisher and fan-out ─────────────


class _Recorder:
    """A transport that keeps every text written to it."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def write(self, text: str) -> bool:
        self.texts.append(text)
        return True

    async def send_text(self, text: str) -> None:
        self.texts.append(text)

    async def close(self, code: int, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass


def _minutes(path: Path | None, count: int) -> list[tuple[float, float, float, float]]:
    """(open, high, low, close) of ``count`` minutes: the file's first, or a walk when there is none."""
    if path is not None:
        with path.open(encoding="utf-8") as file:
            rows = list(csv.DictReader(file))[:count]
        return [(float(r["Open"]), float(r["High"]), float(r["Low"]), float(r["Close"])) for r in rows]
    out, price = [], 3080.0
    for i in range(count):
        step = ((i * 7919) % 13 - 6) / 10
        out.append((price, price + abs(step) + 0.2, price - abs(step) - 0.3, price + step))
        price += step
    return out


async def _collect(path: Path | None, count: int) -> dict[str, list[str]]:
    from legend.adapters.clock.frozen import FrozenClock
    from legend.adapters.memory.backplane import InMemoryBackplane
    from legend.domain.bars import Bar
    from legend.domain.channels import ChannelRegistry
    from legend.domain.inputs import AlertInput, MarketStatusInput, PatternInput, PriceInput
    from legend.domain.stats import Counters
    from legend.services.streaming.limits import Limits
    from legend.services.streaming.publisher import Publisher
    from legend.services.streaming.service import StreamingService

    clock, backplane, registry, counters = FrozenClock(), InMemoryBackplane(), ChannelRegistry(), Counters()
    limits = Limits(max_messages_per_second=10**9, max_pending_messages=10**9)
    streaming = StreamingService(backplane, registry, clock, limits, counters)
    publisher = Publisher(backplane, registry, clock, counters, history_size=100)
    await streaming.start()
    live = _Recorder()
    session = streaming.open_session(live, "trader-1")
    for request in (
        {"channel": "ticker", "ticker": "SPX"},
        {"channel": "patterns"},
        {"channel": "alerts"},
        {"channel": "bars", "ticker": "SPX", "interval": "1m"},
    ):
        await streaming.handle_frame(session, json.dumps({"type": "subscribe", **request}))
    replies = {"connection": live.texts[0], "subscription": live.texts[1]}
    start = datetime(2019, 11, 5, 14, 30, tzinfo=UTC)
    previous = None
    for i, (open_, high, low, close) in enumerate(_minutes(path, count)):
        clock.advance(60)
        await publisher.price(
            PriceInput(
                ticker="SPX", price=close, high=high, low=low, open_price=open_, volume=120_000 * (i + 1),
                previous_close=previous or open_,
            )
        )  # fmt: skip
        bar = Bar(
            ticker="SPX", interval="1m", start=start + timedelta(minutes=i), open=open_, high=high, low=low,
            close=close, volume=120_000, regular=True, closed=True,
        )  # fmt: skip
        await publisher.publish_bar(bar)
        await publisher.pattern(
            PatternInput(
                ticker="SPX", pattern_type="VCP", score=70 + i % 30, entry_price=close,
                stop_price=round(low - 4, 2), target_price=round(high + 9, 2),
            )
        )  # fmt: skip
        await publisher.alert(
            AlertInput(
                ticker="SPX", alert_type="price_above" if i % 2 else "price_below", trigger_price=3080.0,
                current_price=close, alert_id=f"rule-{i}",
            )
        )  # fmt: skip
        previous = close
    await asyncio.sleep(0)
    late = _Recorder()  # a connection that subscribes now gets a history of 100 prices
    await streaming.handle_frame(
        streaming.open_session(late, "trader-2"), '{"type":"subscribe","channel":"ticker","ticker":"SPX"}'
    )
    await streaming.handle_frame(session, '{"type":"ping"}')
    await streaming.handle_frame(session, '{"type":"subscribe","channel":"news"}')
    await streaming.handle_frame(session, '{"type":"subscribe","channel":"market_status"}')
    await publisher.market_status(MarketStatusInput(status="halted"))
    await asyncio.sleep(0)
    replies["history"] = next(t for t in late.texts if t.startswith('{"type":"history"'))
    replies["history_empty"] = next(
        t for t in live.texts if t.startswith('{"type":"history","channel":"patterns"')
    )
    replies["market_status"] = next(t for t in live.texts if t.startswith('{"type":"market_status"'))
    replies["error"] = next(t for t in live.texts if t.startswith('{"type":"error"'))
    replies["pong"] = next(t for t in live.texts if t.startswith('{"type":"pong"'))
    kinds: dict[str, list[str]] = {"price_update": [], "bar": [], "pattern_alert": [], "alert_trigger": []}
    for text in live.texts:
        kind = json.loads(text)["type"]
        if kind in kinds:
            kinds[kind].append(text)
    return {**kinds, **{name: [text] for name, text in replies.items()}}


# ───────────── bytes ─────────────


def _header(size: int) -> int:
    return 2 if size < 126 else 4 if size < 65536 else 10


def _alone(payload: bytes, wbits: int = 12, mem_level: int = 5) -> bytes:
    compressor = zlib.compressobj(-1, zlib.DEFLATED, -wbits, mem_level)
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def byte_table(messages: dict[str, list[str]], floor: int) -> list[dict[str, Any]]:
    rows = []
    for kind, texts in messages.items():
        payloads = [text.encode() for text in texts]
        plain = sum(_header(len(p)) + len(p) for p in payloads)
        alone = [_alone(p) for p in payloads]
        compressed = sum(_header(len(c)) + len(c) for c in alone)
        context = zlib.compressobj(-1, zlib.DEFLATED, -12, 5)  # one connection's, with context takeover
        taken = 0
        for payload in payloads:
            data = (context.compress(payload) + context.flush(zlib.Z_SYNC_FLUSH))[:-4]
            taken += _header(len(data)) + len(data)
        median = statistics.median(len(p) for p in payloads)
        rows.append(
            {
                "kind": kind,
                "messages": len(texts),
                "median_bytes": median,
                "plain": plain / len(texts),
                "alone": compressed / len(texts),
                "context": taken / len(texts),
                "sent_compressed": median >= floor,
            }
        )
    return rows


def settings_table(messages: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Compressed size and µs per message for a few zlib settings (window bits, memLevel)."""
    payloads = [t.encode() for kind in ("price_update", "pattern_alert") for t in messages[kind]]
    rows = []
    for wbits, mem_level in ((12, 5), (15, 8), (9, 1)):
        best = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            size = sum(len(_alone(p, wbits, mem_level)) for p in payloads)
            best = min(best, time.perf_counter() - started)
        rows.append(
            {
                "window_bits": wbits,
                "mem_level": mem_level,
                "ratio": size / sum(len(p) for p in payloads),
                "us": best / len(payloads) * 1e6,
            }
        )
    return rows


# ───────────── fan-out through the real protocol ─────────────


class CountingTransport:
    """What the protocol needs of an asyncio transport; ``write`` only counts."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class KeepingTransport(CountingTransport):
    """Keeps what is written."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts, then waits for the disconnect that never comes."""
    await receive()
    await send({"type": "websocket.accept"})
    await receive()


def _handshake(offer: str | None) -> bytes:
    extension = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
    return (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    ).encode()


async def _connections(case: str, count: int) -> tuple[list[Any], list[CountingTransport]]:
    """``count`` protocols after the handshake of ``case``'s client."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState
    from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory

    from legend.adapters.http import websocket_protocol as module
    from legend.settings import ServerSettings

    floor = getattr(ServerSettings(), "ws_deflate_min_bytes", 0)
    try:
        cls = module.protocol_class(3.0, 0, floor if case == "shared" else 0)
    except TypeError:  # a checkout from before the floor
        cls = module.protocol_class(3.0, 0)
    config = Config(_app, ws=cls, ws_per_message_deflate=case != "plain", log_config=None, lifespan="off")
    config.load()
    state, loop = ServerState(), asyncio.get_running_loop()
    protocols, transports = [], []
    for _ in range(count):
        protocol = cls(config, state, {}, _loop=loop)
        if case == "own":  # uvicorn's own extension, as Legend had it
            protocol.conn.available_extensions = [ServerPerMessageDeflateFactory(**UVICORN_FACTORY)]
        transport = CountingTransport()
        protocol.connection_made(transport)
        protocol.data_received(_handshake(None if case == "plain" else BROWSER_OFFER))
        protocols.append(protocol)
        transports.append(transport)
    for _ in range(5):
        await asyncio.sleep(0)  # the applications accept: uvicorn writes the 101
    assert all(p.handshake_complete for p in protocols), case
    extensions = protocols[0].conn.extensions
    if case == "plain":
        assert not extensions
    else:
        (extension,) = extensions
        assert isinstance(extension, PerMessageDeflate), extensions
        assert extension.local_no_context_takeover == (case == "shared"), extensions  # own: context kept
    return protocols, transports


def _check_frame(case: str, protocol: Any, text: str) -> None:
    """The frame a case writes decodes to ``text`` (caught by a transport of its own)."""
    sink = KeepingTransport()
    protocol.transport, keep = sink, protocol.transport
    try:
        protocol.write_text(text)
    finally:
        protocol.transport = keep
    frame = b"".join(sink.frames)
    if not frame[0] & 0x40:  # uncompressed
        assert frame.endswith(text.encode()), case
        return
    size = frame[1] & 0x7F
    payload = frame[2 + {126: 2, 127: 8}.get(size, 0) :]
    decoder = zlib.decompressobj(-15)  # a client's decoder; a shared frame must not need its context
    assert decoder.decompress(payload + b"\x00\x00\xff\xff") == text.encode() or case == "own", case


async def _fanout(case: str, connections: int, texts: list[str]) -> dict[str, float]:
    from legend.adapters.http import websocket_protocol as module

    if case == "shared" and not hasattr(module, "deflate_frame_of"):
        return {
            "us_per_fanout": math.nan,
            "bytes_per_delivery": math.nan,
            "bytes_held_per_connection": math.nan,
        }
    protocols, transports = await _connections(case, connections)
    if case != "own":
        _check_frame(case, protocols[0], texts[0] + " ")
    writes = _writers(protocols)
    for text in texts[:20]:  # warm up (and the context of case "own")
        for write in writes:
            write(text)
    best, written = float("inf"), 0
    for _ in range(REPEATS):
        before = sum(t.written for t in transports)
        started = time.perf_counter()
        for text in texts:
            for write in writes:
                write(text)
        best = min(best, time.perf_counter() - started)
        written = sum(t.written for t in transports) - before
    await _disconnect(protocols)
    return {
        "us_per_fanout": best / len(texts) * 1e6,
        "bytes_per_delivery": written / (len(texts) * connections),
        "bytes_held_per_connection": await _held(case, min(connections, 500), texts[:20]),
    }


def _writers(protocols: list[Any]) -> list[Any]:
    """What the fan-out writes through: ``SocketTransport.write`` (a checkout from before it: the
    protocol's ``write_text``)."""
    from legend.adapters.http import websocket_protocol as module

    fast = getattr(module, "SocketTransport", None)
    return [fast(protocol).write if fast else protocol.write_text for protocol in protocols]


async def _disconnect(protocols: list[Any]) -> None:
    for protocol in protocols:  # the applications see the disconnect and end
        protocol.connection_lost(None)
    for _ in range(5):
        await asyncio.sleep(0)


async def _held(case: str, connections: int, texts: list[str]) -> float:
    """Bytes each connection holds once open and written ``texts`` (tracemalloc: Python's objects and
    zlib's buffers, which it allocates through Python)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    protocols, _ = await _connections(case, connections)
    writes = _writers(protocols)
    for text in texts:
        for write in writes:
            write(text)
    gc.collect()
    held = (tracemalloc.get_traced_memory()[0] - before) / connections
    tracemalloc.stop()
    await _disconnect(protocols)
    return held


def _round(root: Path, case: str, connections: int, messages: Path) -> dict[str, float]:
    """One case timed in a process of its own (no case runs on a heap another one left behind)."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--one-case", case, "--checkout", str(root),
        "--connections", str(connections), "--messages-file", str(messages),
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def _use_checkout(root: Path) -> None:
    """Import ``legend`` from ``root``, not from the checkout the virtualenv has installed (editable)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, str(root))


def _prices_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    return next((ROOT / p for p in PRICES if (ROOT / p).exists()), None)


def _print_bytes(rows: list[dict[str, Any]], floor: int) -> None:
    print(f"bytes on the wire per message, frame headers included (floor: {floor} bytes)")
    print(
        f"{'kind':<14}{'n':>5}{'median':>8}{'plain':>8}{'alone':>8}{'ratio':>7}{'context':>9}{'ratio':>7}  sent"
    )
    for r in rows:
        print(
            f"{r['kind']:<14}{r['messages']:>5}{r['median_bytes']:>8.0f}{r['plain']:>8.1f}{r['alone']:>8.1f}"
            f"{r['alone'] / r['plain']:>7.3f}{r['context']:>9.1f}{r['context'] / r['plain']:>7.3f}  "
            + ("compressed" if r["sent_compressed"] else "plain (under the floor)")
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="price updates per fan-out case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prices", type=Path, help="minute prices (Date,Open,Close,High,Low,Volume)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alternately")
    parser.add_argument("--checkout", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--one-case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--messages-file", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one_case:
        _use_checkout(arguments.checkout)
        texts = json.loads(arguments.messages_file.read_text(encoding="utf-8"))
        print(json.dumps(asyncio.run(_fanout(arguments.one_case, arguments.connections, texts))))
        return

    from legend.settings import ServerSettings

    floor = ServerSettings().ws_deflate_min_bytes
    path = _prices_path(arguments.prices)
    messages = asyncio.run(_collect(path, max(arguments.messages, 120)))
    print(f"messages from {path or 'a made-up walk (no price file found)'}")
    rows = byte_table(messages, floor)
    _print_bytes(rows, floor)
    print("\nzlib settings, price updates and pattern alerts compressed alone:")
    for s in settings_table(messages):
        print(
            f"  window bits {s['window_bits']:>2}, memLevel {s['mem_level']}: ratio {s['ratio']:.3f}, {s['us']:.1f} µs a message"
        )

    texts = messages["price_update"][: arguments.messages]
    roots = {"this": ROOT, **({"baseline": arguments.baseline.resolve()} if arguments.baseline else {})}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in roots}
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as file:
        json.dump(texts, file)
        file.flush()
        for _ in range(arguments.rounds):
            for name, root in roots.items():
                runs[name].append(
                    {case: _round(root, case, arguments.connections, Path(file.name)) for case in CASES}
                )
    n = arguments.connections
    print(
        f"\nfan-out of {len(texts)} price updates to {n} connections, {arguments.rounds} rounds "
        "(median of the rounds; ratios per round, then their median)"
    )
    print(
        f"{'checkout':<10}{'case':<8}{'µs/fan-out':>12}{'µs/delivery':>13}{'B/delivery':>12}{'× plain':>9}"
        f"{'B held/conn':>13}"
    )
    summary: dict[str, Any] = {"connections": n, "messages": len(texts), "floor": floor, "bytes": rows}
    for name, results in runs.items():
        for case in CASES:
            us = statistics.median(r[case]["us_per_fanout"] for r in results)
            ratio = statistics.median(r[case]["us_per_fanout"] / r["plain"]["us_per_fanout"] for r in results)
            size = statistics.median(r[case]["bytes_per_delivery"] for r in results)
            held = statistics.median(r[case]["bytes_held_per_connection"] for r in results)
            print(f"{name:<10}{case:<8}{us:>12.1f}{us / n:>13.3f}{size:>12.1f}{ratio:>9.2f}{held:>13.0f}")
            summary[f"{name}.{case}"] = {
                "us_per_fanout": us,
                "bytes_per_delivery": size,
                "x_plain": ratio,
                "bytes_held_per_connection": held,
            }
    if arguments.baseline:
        ratio = statistics.median(
            a["plain"]["us_per_fanout"] / b["plain"]["us_per_fanout"]
            for a, b in zip(runs["this"], runs["baseline"], strict=True)
        )
        print(f"plain path, this / baseline: {ratio:.3f} (median of the rounds' ratios)")
        summary["plain_this_over_baseline"] = ratio
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
