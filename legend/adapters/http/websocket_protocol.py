"""uvicorn's ``websockets-sansio`` WebSocket protocol, with what a fan-out server needs from it.

``legend serve`` selects this protocol. It adds three things to uvicorn's own, and is otherwise unchanged:

- **Synchronous writes of a shared frame.** ``SocketTransport.write`` frames the text once (the same
  unmasked bytes for every client: server frames carry no mask) and hands them to the socket at once,
  without the awaited ASGI ``send`` per connection per message. It declines when the socket's buffer is
  over its high-water mark, so the caller queues instead of piling bytes up in the kernel and in asyncio.
  It is the fan-out's step per recipient, so it reads only its own slots and the socket's transport: the
  protocol (a dict of some forty attributes per connection, a few cache lines apart) keeps its ``ready``
  flag up to date instead of being asked (measured: 2.3 of 3.2 µs per delivery at 5,000 connections went
  to reading the protocol; ``bench/bench_fanout_micro.py``, case ``socket``).
- **Per-message deflate compressed once.** The extension (RFC 7692) is negotiated with
  ``server_no_context_takeover``: every server message is compressed on its own, so the compressed
  frame of a text is the same bytes for every connection, made once per message (``deflate_frame_of``)
  however many connections it goes to. Texts under ``server.ws_deflate_min_bytes`` go uncompressed.
  ``client_no_context_takeover`` too: no connection keeps a decompressor between messages. An offer that
  cannot be accepted, even one that cannot be parsed, gets no extension, never a failed handshake.
- **A close that really ends.** uvicorn waits for a closing peer with ``transport.close()``, which first
  flushes the write buffer: a peer that stopped reading keeps its socket ESTABLISHED until TCP gives
  up. Here the close frame is written even into a full buffer, and a peer that has not finished the
  handshake within ``close_timeout`` is aborted: its memory and file descriptor are released.
- **Bounded buffers.** The kernel's send buffer is ``server.ws_send_buffer`` (256 KiB by default; 0 lets
  Linux autotune it to several megabytes on a loopback or LAN socket), asyncio's write buffer has an
  explicit high-water mark (``WRITE_HIGH_WATER``), and pongs are not queued above it: a peer that stops
  reading holds at most that much of both before its writes get stuck and it is closed as slow.
- **A stopping server answers 503.** A handshake caught by uvicorn's shutdown gets HTTP 503 "the server is
  restarting" with ``Retry-After`` (nginx retries it on another instance), not 500, and the application's
  accept or refusal after it is moot instead of failing inside websockets.
- **Quiet handling of hostile frames.** Invalid UTF-8 in a text frame is answered with close code 1007
  as before, logged as one line at most once a second instead of a traceback per frame.
- **Less memory per connection.** uvicorn gives every connection an ``asyncio.Queue`` for its incoming
  events and an ``asyncio.Event`` for write flow control: five deques, about 3 KB, for a queue that one
  reader empties and an event that is almost always set. ``_Inbox`` and ``_Flag`` do the same with two
  slots each (``slim_events.py``), and the handshake's request and response objects are let go once the
  handshake is done, the request's headers emptied (websockets' frame parser keeps the request) and the
  scope's copy of them dropped. uvicorn's 37 attributes are slots: past 30, CPython 3.11 gives each
  instance a dict of its own (about 1.5 KB).

The application finds the protocol in its WebSocket scope as ``scope["extensions"]["legend.socket"]``;
under any other ASGI server that key is absent and the application uses plain ASGI sends.

This subclass reads and overrides private parts of uvicorn's class (its attributes and event handlers);
``tests/unit/test_uvicorn_contract.py`` lists each one and fails, naming it, when an upgrade changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from websockets.headers import parse_extension

from legend.adapters.http.slim_events import _Flag, _Inbox
from legend.ports.transport import TransportClosed
from legend.runtime.logcontext import HOSTILE

EXTENSION = "legend.socket"
log = logging.getLogger("legend.ws")

# asyncio's write buffer per connection: above the high-water mark ``write_text`` declines (the message
# waits in the outbox, where it is counted), and writing resumes once the buffer is below the low one.
# asyncio's own defaults, set here so that the bound documented in docs/reliability.md is ours.
WRITE_HIGH_WATER = 64 * 1024
WRITE_LOW_WATER = 16 * 1024
_ANSWERS = ("websocket.accept", "websocket.close")  # what an application answers a handshake with
RESTART_RETRY_AFTER = 1  # seconds a handshake refused by a stopping server is asked to wait
_PONG = b"\x8a"  # first byte of a pong frame as websockets writes it: FIN, opcode 0xA, no mask

# The frame of the last text written, shared by every connection it is written to: fan-out writes one
# text to every subscriber in a row, so it is framed once per message, not once per connection.
_last_text = ""
_last_frame = b"\x81\x00"

# Per-message deflate (RFC 7692). The server's window of 4 KiB and zlib's memLevel 5 are uvicorn's own
# choice: our messages are a few hundred bytes, which zlib's defaults (32 KiB, 8) compress no smaller and
# a little slower (bench/bench_deflate.py), and the window the handshake advertises lets clients inflate
# with 4 KiB.
DEFLATE_WINDOW_BITS = 12
DEFLATE_MEM_LEVEL = 5
DEFLATE_SETTINGS: dict[str, Any] = {"memLevel": DEFLATE_MEM_LEVEL}
DEFLATE_OFFER = ServerPerMessageDeflateFactory(
    server_no_context_takeover=True,  # every message compressed alone: one compressed frame for all
    client_no_context_takeover=True,  # no decompressor kept per connection between client messages
    server_max_window_bits=DEFLATE_WINDOW_BITS,
    client_max_window_bits=DEFLATE_WINDOW_BITS,
    compress_settings=DEFLATE_SETTINGS,
)
_PLAIN, _SHARED, _OWN = 0, 1, 2  # how a connection's text frames are made (``deflate_mode``)

# The deflate frame of the last text written to a connection with the extension, as ``_last_frame``.
_last_deflated_text = ""
_last_deflated_floor = 0
_last_deflated_frame = b"\x81\x00"


def _frame(first: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented frame (RFC 6455 §5.2) whose first byte is ``first``."""
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def frame_of(text: str) -> bytes:
    """The unmasked, unfragmented WebSocket text frame of ``text`` (RFC 6455 §5.2)."""
    global _last_text, _last_frame
    if text is _last_text:
        return _last_frame
    _last_text, _last_frame = text, _frame(0x81, text.encode())
    return _last_frame


def deflate_frame_of(text: str, min_bytes: int) -> bytes:
    """The text frame of ``text`` for a connection with per-message deflate and
    ``server_no_context_takeover``: compressed alone with RSV1 set (RFC 7692 §7.2.1), or uncompressed
    (RSV1 clear, §6) when its UTF-8 is under ``min_bytes`` or would not shrink."""
    global _last_deflated_text, _last_deflated_floor, _last_deflated_frame
    if text is _last_deflated_text and min_bytes == _last_deflated_floor:
        return _last_deflated_frame
    payload = text.encode()
    frame = None
    if len(payload) >= min_bytes:
        compressor = zlib.compressobj(-1, zlib.DEFLATED, -DEFLATE_WINDOW_BITS, DEFLATE_MEM_LEVEL)
        # a sync flush ends the data with an empty stored block, 00 00 ff ff, which the sender removes
        data = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        if len(data) < len(payload):
            frame = _frame(0xC1, data)  # FIN, RSV1 (compressed), opcode text
    if frame is None:
        frame = _frame(0x81, payload)
    _last_deflated_text, _last_deflated_floor, _last_deflated_frame = text, min_bytes, frame
    return frame


def deflate_mode(extensions: Sequence[Extension]) -> int:
    """How to frame text for a connection that negotiated ``extensions``: plain; shared deflate frames,
    when the only extension is per-message deflate without server context takeover and with a window
    the shared frames fit in; else compressed by the connection's own extension (a client that asked
    for a smaller server window)."""
    if not extensions:
        return _PLAIN
    extension = extensions[0]
    if (
        len(extensions) == 1
        and isinstance(extension, PerMessageDeflate)
        and extension.local_no_context_takeover
        and extension.local_max_window_bits >= DEFLATE_WINDOW_BITS
    ):
        return _SHARED
    return _OWN


def offer_parses(headers: Headers) -> bool:
    """Whether every ``Sec-WebSocket-Extensions`` header of a handshake request parses (RFC 6455 §9.1):
    websockets fails the handshake with a 400 on one that does not, where a server with no extensions
    to offer would not have looked at it."""
    try:
        for value in headers.get_all("Sec-WebSocket-Extensions"):
            parse_extension(value)
    except InvalidHeader:
        return False
    return True


class SocketTransport:
    """The Transport port over ``LegendWebSocketProtocol`` (``legend serve``): synchronous writes.

    ``ready`` is kept by the protocol (``_ready``): the socket is under its high-water mark, no close
    frame has gone out, the peer is connected, and the frame is one shared by every connection of its
    kind (plain, or deflate compressed once). Anything else, and a transport that is closing, goes the
    protocol's way (``write_text``): declined, or TransportClosed."""

    __slots__ = ("_deflate", "_min_bytes", "_protocol", "_raw", "ready")

    def __init__(self, protocol: LegendWebSocketProtocol) -> None:
        self._protocol = protocol
        self._raw: Any = protocol.transport  # uvloop's or asyncio's transport: write and is_closing
        self._deflate = protocol.deflate_mode == _SHARED
        self._min_bytes = protocol.deflate_min_bytes
        self.ready = False
        protocol.fast_writer = self
        protocol._ready()

    def write(self, text: str) -> bool:
        raw = self._raw
        if self.ready and not raw.is_closing():
            if not self._deflate:
                raw.write(_last_frame if text is _last_text else frame_of(text))
            elif text is _last_deflated_text and self._min_bytes == _last_deflated_floor:
                raw.write(_last_deflated_frame)
            else:
                raw.write(deflate_frame_of(text, self._min_bytes))
            return True
        return self._protocol.write_text(text)

    async def send_text(self, text: str) -> None:
        await self._protocol.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self._protocol.close_and_wait(code, reason)

    def abort(self) -> None:
        self._protocol.abort()


UVICORN_ATTRIBUTES = (
    *("app", "app_state", "asgi_version", "client", "close_sent", "close_timeout", "close_timer"),
    *("config", "conn", "connections", "curr_msg_data_type", "default_headers", "disconnected"),
    *("frames", "handshake_complete", "handshake_initiated", "initial_response", "last_ping_rtt"),
    *("logger", "loop", "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout"),
    *("ping_timer", "pong_timer", "queue", "read_paused", "request", "response", "root_path"),
    *("scheme", "scope", "server", "tasks", "transport", "writable"),
)


class LegendWebSocketProtocol(WebSocketsSansIOProtocol):
    """See the module docstring. The class attributes are set per server by ``protocol_class``."""

    # Every attribute uvicorn's class and this one set, as slots: uvicorn sets 37 on each instance, past
    # the 30 that CPython 3.11 shares between the dicts of one class, so each connection had a dict of
    # its own of about 1.5 KB; slots take 8 bytes each (tests/unit/test_uvicorn_contract.py keeps the list
    # complete: a name missing would only go to the dict again).
    __slots__ = (*UVICORN_ATTRIBUTES, "_lost", "deflate_mode", "fast_writer")

    configured_close_timeout = 3.0  # realtime.close_timeout: seconds a close handshake may take
    send_buffer = 0  # SO_SNDBUF of each connection in bytes; 0: the kernel's default (autotuned)
    deflate_min_bytes = 0  # server.ws_deflate_min_bytes: shorter texts go uncompressed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.deflate_mode = _PLAIN  # set by the handshake when the client accepted per-message deflate
        self.fast_writer: SocketTransport | None = None  # the application's transport, once it made one
        super().__init__(*args, **kwargs)
        # uvicorn's __init__ sets its own close_timeout (10 s) on the instance, which hides any class
        # attribute of that name: ours is set after it.
        self.close_timeout = self.configured_close_timeout
        self.queue: Any = _Inbox()  # replaces uvicorn's asyncio.Queue and Event (see the module docstring)
        self.writable: Any = _Flag(True)
        self._lost: asyncio.Future[None] | None = None  # made by close_and_wait only: most never close so
        # per-message deflate as offered here, not as uvicorn offers it (with context per connection)
        if self.config.ws_per_message_deflate:
            self.conn.available_extensions = [DEFLATE_OFFER]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        sock = transport.get_extra_info("socket")
        if self.send_buffer and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)

    # ───────────── what the application uses ─────────────

    def _ready(self) -> None:
        """Tell the fast writer whether it may write shared frames straight to the socket."""
        writer = self.fast_writer
        if writer is not None:
            writer.ready = (
                self.writable.is_set()
                and not self.close_sent
                and not self.disconnected
                and self.deflate_mode != _OWN
            )

    def pause_writing(self) -> None:
        super().pause_writing()
        self._ready()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._ready()

    def write_text(self, text: str) -> bool:
        """Write one text frame now; False (nothing written) while the buffer is over its high-water
        mark; raises TransportClosed once the connection is closing or gone."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            raise TransportClosed("the WebSocket is closed")
        if not self.writable.is_set():
            return False
        mode = self.deflate_mode
        if not mode:
            self.transport.write(frame_of(text))
        elif mode == _SHARED:  # compressed once for every connection it goes to
            self.transport.write(deflate_frame_of(text, self.deflate_min_bytes))
        else:
            self._write_own_deflate(text)
        return True

    def _write_own_deflate(self, text: str) -> None:
        """Compressed by this connection's extension, for a client whose window the shared frames
        exceed; under the floor uncompressed (RFC 7692 §6: an uncompressed message touches no context)."""
        payload = text.encode()
        if len(payload) < self.deflate_min_bytes:
            self.transport.write(frame_of(text))
            return
        self.conn.send_text(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    async def send_text(self, text: str) -> None:
        """Write one text frame, waiting while the buffer is over its high-water mark."""
        while not self.write_text(text):
            await self.writable.wait()

    async def close_and_wait(self, code: int, reason: str) -> None:
        """Send a close frame and wait until the connection is gone (the caller bounds the wait)."""
        self.close_now(code, reason)
        if self.disconnected:
            return
        if self._lost is None:
            self._lost = self.loop.create_future()
        await asyncio.shield(self._lost)

    def close_now(self, code: int, reason: str) -> None:
        """Queue the close frame even into a full buffer; abort if the handshake does not end in time."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self._ready()
        if self.read_paused:  # read on, so that the peer's answering close frame is seen
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.abort)

    def abort(self) -> None:
        """Drop the connection now: no flush, no handshake. A zero linger makes the kernel reset the
        connection and free its send queue at once, instead of keeping an orphaned socket that retries
        delivering it to a peer that does not read (FIN-WAIT-1, for minutes)."""
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # ───────────── uvicorn's protocol, adjusted ─────────────

    def handle_connect(self, event: Any) -> None:
        if self.conn.available_extensions and not offer_parses(event.headers):
            self.conn.available_extensions = None  # declined, as an offer the factory cannot accept
        super().handle_connect(event)
        self.deflate_mode = deflate_mode(self.conn.extensions)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the application's task is created but has not run yet
            scope["extensions"][EXTENSION] = self

    def shutdown(self) -> None:
        """uvicorn's, except that a handshake not yet answered gets HTTP 503 with ``Retry-After`` instead
        of 500: the server is stopping, not failing, and the next process (or, behind nginx's
        ``proxy_next_upstream http_503``, another instance) will take the client."""
        if self.close_sent or self.handshake_complete or self.initial_response is not None:
            super().shutdown()
            return
        self.stop_keepalive()
        response = self.conn.reject(503, "the server is restarting: try again\n")
        response.headers["Retry-After"] = str(RESTART_RETRY_AFTER)
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.handshake_complete = self.close_sent = True  # answered: as uvicorn marks a refused handshake
        self.transport.close()

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind in _ANSWERS and self.close_sent and self.transport.is_closing():
            return  # answered already (the 503 of ``shutdown``): the application's accept or refusal is moot
        if (
            kind == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
        ):
            self.close_now(message.get("code", 1000), message.get("reason", "") or "")
            return
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # uvicorn reads neither after the handshake; they hold every header the client sent. The
            # request's headers are emptied too: websockets' parser keeps the request for the
            # connection's life (a local of ``ServerProtocol.parse``, the generator that reads frames).
            self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]
            # the scope's copy of them, read by the application before it accepted (Host, Origin)
            self.scope["headers"] = []

    def handle_ping(self) -> None:
        """Answer a ping, except above the high-water mark: a peer that pings but does not read would
        otherwise grow the buffer by a pong per ping. RFC 6455 §5.5.3 lets a pong answer only the
        latest ping; anything else websockets queued (a close reply) is written."""
        output = self.conn.data_to_send()
        if not self.writable.is_set():
            output = [chunk for chunk in output if chunk[:1] != _PONG]
        self.transport.write(b"".join(output))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._ready()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:
                self.frames = []
                # the client's address as the application saw it (behind a trusted proxy: forwarded)
                client = self.scope.get("client") or self.client
                log.warning("closed %s (1007): a text frame is not valid UTF-8", client, extra=HOSTILE)
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


def protocol_class(
    close_timeout: float, send_buffer: int = 0, deflate_min_bytes: int = 0
) -> type[LegendWebSocketProtocol]:
    """The protocol class for uvicorn's ``ws`` setting: peers dropped after ``close_timeout``, kernel
    send buffers of ``send_buffer`` bytes (0: the kernel's default), texts under ``deflate_min_bytes``
    uncompressed (when uvicorn's ``ws_per_message_deflate`` is on and the client accepts it)."""
    attributes = {
        "configured_close_timeout": close_timeout,
        "send_buffer": send_buffer,
        "deflate_min_bytes": deflate_min_bytes,
    }
    return type("LegendWebSocketProtocol", (LegendWebSocketProtocol,), attributes)
