"""The light replacements of uvicorn's per-connection asyncio.Queue and asyncio.Event
(legend/adapters/http/websocket_protocol.py): same behaviour where uvicorn and Legend use them; the
pings it leaves unanswered while its write buffer is full; and the per-message deflate frames, made once
per message for every connection that can take them (tests/integration/test_deflate.py: over a server)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import zlib
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import State
from websockets.server import ServerProtocol

from legend.adapters.http.websocket_protocol import (
    SocketTransport,
    _Flag,
    _Inbox,
    deflate_frame_of,
    deflate_mode,
    frame_of,
    offer_parses,
    protocol_class,
)
from legend.adapters.http.ws import close_reason
from legend.ports.transport import TransportClosed


async def test_inbox_hands_events_over_in_order_to_its_reader() -> None:
    inbox = _Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty() and inbox.qsize() == 2
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(3)  # wakes the waiting reader
    inbox.put_nowait(4)  # queued behind it
    assert await reader == 3
    assert await inbox.get() == 4


async def test_an_inbox_reader_cancelled_while_waiting_loses_nothing() -> None:
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("disconnect")
    assert await asyncio.wait_for(inbox.get(), 1) == "disconnect"


async def test_flag_wakes_every_waiter_and_keeps_nothing_once_set() -> None:
    flag = _Flag(True)
    assert flag.is_set() and await flag.wait()
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag._waiters is None


async def test_a_cancelled_flag_waiter_is_forgotten() -> None:
    flag = _Flag(False)
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert flag._waiters == []
    flag.set()


def test_they_are_much_smaller_than_what_they_replace() -> None:
    """Not a timing: object sizes, which decide the memory of 10,000 idle connections."""

    def size(obj: object) -> int:
        return sys.getsizeof(obj) + sum(
            sys.getsizeof(getattr(obj, name)) for name in getattr(obj, "__dict__", {}) or ()
        )

    queue: asyncio.Queue[object] = asyncio.Queue()
    event = asyncio.Event()
    heavy = size(queue) + sum(sys.getsizeof(getattr(queue, n)) for n in ("_queue", "_getters", "_putters"))
    heavy += size(event) + sys.getsizeof(event._waiters)  # type: ignore[attr-defined]
    light = sys.getsizeof(_Inbox()) + sys.getsizeof([]) + sys.getsizeof(_Flag(True))
    assert light * 5 < heavy


@pytest.mark.parametrize("text", ["é" * 200, "\U0001f511" * 60, "a" * 500, "short"])
def test_a_close_reason_fits_a_close_frame(text: str) -> None:
    reason = close_reason(text)
    assert len(reason.encode()) <= 123 and text.startswith(reason) and reason


class _Transport:
    """What the protocol writes, and nothing else."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


async def test_pings_are_not_answered_while_the_write_buffer_is_over_its_high_water_mark() -> None:
    """A peer that pings but does not read would otherwise grow asyncio's buffer by a pong per ping."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(1.0)(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    protocol.conn = ServerProtocol(state=State.OPEN)
    transport = protocol.transport = _Transport()  # type: ignore[assignment]
    ping = b"\x89\x84" + b"\x00" * 4 + b"abcd"  # masked ping, payload "abcd", all-zero mask
    protocol.data_received(ping)
    assert transport.written == [b"\x8a\x04abcd"]  # answered
    protocol.pause_writing()  # what asyncio calls once the buffer passes the high-water mark
    for _ in range(100):
        protocol.data_received(ping)
    assert b"".join(transport.written[1:]) == b""  # no pong piles up
    protocol.resume_writing()
    protocol.data_received(ping)
    assert transport.written[-1] == b"\x8a\x04abcd"  # answered again once it drained


# ───────────── per-message deflate: frames made once, and which connections may share them ─────────────


def _inflate(frame: bytes, window_bits: int = 12) -> str:
    """The text of a compressed frame, inflated alone (as a client of a server without context takeover)
    with the server window the handshake agreed."""
    size = frame[1] & 0x7F
    payload = frame[2 + {126: 2, 127: 8}.get(size, 0) :]
    return zlib.decompressobj(-window_bits).decompress(payload + b"\x00\x00\xff\xff").decode()


@pytest.mark.parametrize("size", [200, 5_000, 300_000])  # frame lengths of 7, 16 and 64 bits
def test_a_deflate_frame_is_the_text_compressed_alone_with_rsv1(size: int) -> None:
    text = ('{"type":"price_update","ticker":"AAPL","price":231.5,"note":"' + "é" * size)[:size] + '"}'
    frame = deflate_frame_of(text, 128)
    assert frame[0] == 0xC1  # FIN, RSV1, text
    assert _inflate(frame) == text
    assert len(frame) < len(frame_of(text))


def test_a_deflate_frame_is_made_once_per_text() -> None:
    text = '{"type":"pattern_alert","ticker":"AAPL","message":"' + "VCP " * 50 + '"}'
    assert deflate_frame_of(text, 128) is deflate_frame_of(text, 128)
    copy = "".join(list(text))  # an equal text, another object: framed again, to the same bytes
    assert copy is not text and deflate_frame_of(copy, 128) == deflate_frame_of(text, 128)


def test_a_text_under_the_floor_or_that_would_not_shrink_goes_uncompressed() -> None:
    small = (
        '{"type":"history","channel":"patterns","messages":[],"seq":0,"timestamp":"2026-01-05T15:00:00.000Z"}'
    )
    assert len(small) < 128 and deflate_frame_of(small, 128) == frame_of(small)  # RSV1 clear
    assert deflate_frame_of(small, 64)[0] == 0xC1  # it shrinks: over a lower floor it is compressed
    noise = base64.b64encode(os.urandom(3000)).decode()[:3000]  # over the floor, shrinks little
    frame = deflate_frame_of(noise, 128)
    assert frame[0] == 0xC1 or frame == frame_of(noise)
    assert deflate_frame_of("", 0) == b"\x81\x00"
    multibyte = "é" * 100  # 100 characters, 200 bytes: the floor counts bytes
    assert deflate_frame_of(multibyte, 150)[0] == 0xC1 and deflate_frame_of(multibyte, 201) == frame_of(
        multibyte
    )


@pytest.mark.parametrize(
    ("extensions", "mode"),
    [
        ([], "plain"),
        ([PerMessageDeflate(True, True, 12, 12)], "shared"),
        ([PerMessageDeflate(False, True, 15, 15)], "shared"),  # a larger window holds the shared frames
        ([PerMessageDeflate(True, True, 12, 9)], "own"),  # a client that asked a smaller server window
        ([PerMessageDeflate(True, False, 12, 12)], "own"),  # with context takeover (not offered by us)
    ],
)
def test_which_connections_take_the_shared_frames(extensions: list[PerMessageDeflate], mode: str) -> None:
    assert deflate_mode(extensions) == {"plain": 0, "shared": 1, "own": 2}[mode]


def test_an_unparseable_offer_is_told_apart() -> None:
    assert offer_parses(Headers([("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]))
    assert offer_parses(Headers([("Sec-WebSocket-Extensions", "permessage-deflate; foo=bar")]))  # parses
    assert offer_parses(Headers())
    assert not offer_parses(Headers([("Sec-WebSocket-Extensions", 'permessage-deflate; x="unterminated')]))
    assert not offer_parses(
        Headers([("Sec-WebSocket-Extensions", "permessage-deflate"), ("Sec-WebSocket-Extensions", ";;")])
    )


async def _open(extensions: list[PerMessageDeflate], floor: int = 128) -> tuple[Any, _Transport]:
    """A protocol after a handshake that negotiated ``extensions``, writing to a recording transport."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(1.0, 0, floor)(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    protocol.conn = ServerProtocol(state=State.OPEN)
    protocol.conn.extensions = list(extensions)
    mode = deflate_mode(protocol.conn.extensions)
    if mode:
        protocol.deflate_mode = mode  # what handle_connect sets after the handshake
    transport = protocol.transport = _Transport()  # type: ignore[assignment]
    return protocol, transport


async def test_a_fan_out_compresses_a_message_once_for_every_deflate_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[object] = []

    def counted(*args: Any) -> Any:
        made.append(args)
        return real(*args)

    real = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj", counted)  # the module websocket_protocol calls
    deflating = [await _open([PerMessageDeflate(True, True, 12, 12)]) for _ in range(5)]
    plain = [await _open([]) for _ in range(3)]
    text = '{"type":"price_update","ticker":"AAPL","price":231.5,"volume":1000,' + '"x":0,' * 40 + '"seq":7}'
    for protocol, _ in deflating[:2] + plain[:1]:
        assert protocol.write_text(text)  # the protocol's own way (the fast writer's fallback)
    for protocol, _ in deflating[2:] + plain[1:]:
        assert SocketTransport(protocol).write(text)  # the fan-out's way
    assert len(made) == 1  # once, however many connections
    frames = [transport.written[-1] for _, transport in deflating]
    assert all(frame is frames[0] for frame in frames) and _inflate(frames[0]) == text
    assert all(transport.written[-1] is plain[0][1].written[-1] == frame_of(text) for _, transport in plain)


async def test_the_fast_writer_follows_the_state_of_its_protocol() -> None:
    """The fan-out writes through ``SocketTransport.write``, which reads only its own ``ready`` flag and
    the socket's transport: the protocol must keep that flag true to its state, every way it changes."""
    protocol, transport = await _open([])
    writer = SocketTransport(protocol)
    text = '{"type":"price_update","ticker":"AAPL","price":231.5}'
    assert writer.ready and writer.write(text) and transport.written == [frame_of(text)]
    protocol.pause_writing()  # over the high-water mark: declined, nothing written
    assert not writer.ready and not writer.write(text) and len(transport.written) == 1
    protocol.resume_writing()
    assert writer.write(text) and len(transport.written) == 2
    transport.closing = True  # the transport closed under the protocol (uvicorn closes it in places)
    with pytest.raises(TransportClosed):
        writer.write(text)
    transport.closing = False
    protocol.close_now(1000, "bye")  # a close frame went out: nothing may follow it
    assert not writer.ready
    with pytest.raises(TransportClosed):
        writer.write(text)
    assert transport.written[-1][0] == 0x88  # the close frame is the last thing written
    protocol.close_timer.cancel()

    other, other_transport = await _open([])
    other_writer = SocketTransport(other)
    other.connections.add(other)  # what connection_made does
    other.connection_lost(ConnectionResetError())
    assert not other_writer.ready
    with pytest.raises(TransportClosed):
        other_writer.write(text)
    assert other_transport.written == []


async def test_a_connection_with_a_smaller_window_compresses_for_itself() -> None:
    """A client that asked for a 512-byte server window cannot take the shared frames, whose matches
    may reach 4 KiB back: its own extension compresses for it."""
    protocol, transport = await _open([PerMessageDeflate(True, True, 12, 9)])
    writer = SocketTransport(protocol)
    assert not writer.ready  # its frames are its own: always the protocol's way
    quote = base64.b64encode(os.urandom(150)).decode()
    text = f'{{"message":"{quote}","note":"{base64.b64encode(os.urandom(600)).decode()}","again":"{quote}"}}'
    assert writer.write(text)
    (frame,) = transport.written
    assert frame[0] == 0xC1 and _inflate(frame, window_bits=9) == text
    compressor = zlib.compressobj(-1, zlib.DEFLATED, -9, 5)  # the 512-byte window: the quote not found again
    alone = (compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert frame.endswith(alone) and len(frame) > len(deflate_frame_of(text, 128))
    writer.write('{"type":"pong","timestamp":"2026-01-05T15:00:00.000Z"}')  # under the floor
    assert transport.written[-1][0] == 0x81


async def test_a_handshake_caught_by_the_server_stopping_gets_503_and_the_refusal_after_it_is_quiet() -> None:
    """uvicorn's shutdown answered a handshake in progress with 500, and the application's refusal that
    followed failed in websockets (``assert not self.eof_sent``): a restart storm saw both. A stopping
    server is unavailable, not broken: 503 with Retry-After, which nginx retries on another instance."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(1.0)(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = protocol.transport = _Transport()  # type: ignore[assignment]
    protocol.shutdown()
    answer = b"".join(transport.written)
    assert answer.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in answer
    assert transport.closing
    await protocol.send({"type": "websocket.close", "code": 1013, "reason": "draining"})  # no error
    await protocol.send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    protocol.send_500_response()  # what uvicorn's run_asgi does for an application that never accepted
    assert b"".join(transport.written) == answer  # and nothing more written
