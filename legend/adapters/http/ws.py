"""The WebSocket endpoint ``/api/ws``: handshake checks, then frames in and out of the domain session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from litestar import WebSocket, websocket
from litestar.types import Message, Receive, Send

from legend.adapters.auth import BEARER_SUBPROTOCOL, Authenticator, AuthError
from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import error_json
from legend.adapters.http.websocket_protocol import EXTENSION, LegendWebSocketProtocol, SocketTransport
from legend.domain import closecodes
from legend.runtime.logcontext import connection_id
from legend.services.streaming.admission import Refusal
from legend.services.streaming.service import StreamingService
from legend.services.streaming.service_status import ServiceStatusNotifier
from legend.services.streaming.session import Session

log = logging.getLogger("legend.ws")


class AsgiTransport:
    """The Transport port over plain ASGI sends, for any other ASGI server: every write is awaited."""

    __slots__ = ("_send",)

    def __init__(self, socket: StreamSocket) -> None:
        self._send = socket.send

    def write(self, text: str) -> bool:
        return False  # ASGI has no synchronous send: the session's writer awaits send_text

    async def send_text(self, text: str) -> None:
        message: Message = {"type": "websocket.send", "text": text, "bytes": None}
        await self._send(message)

    async def close(self, code: int, reason: str) -> None:
        message: Message = {"type": "websocket.close", "code": code, "reason": reason}
        await self._send(message)

    def abort(self) -> None:
        pass  # nothing below ASGI to abort: the server ends the connection when the app returns


def transport_of(socket: StreamSocket) -> SocketTransport | AsgiTransport:
    protocol = (socket.scope.get("extensions") or {}).get(EXTENSION)
    if isinstance(protocol, LegendWebSocketProtocol):
        return SocketTransport(protocol)
    return AsgiTransport(socket)


def close_reason(text: str) -> str:
    """At most 123 bytes of UTF-8, all a close frame holds (cut by characters, a reason quoting a
    client's non-ASCII text overflowed it and the close became a 4500)."""
    return text.encode()[:123].decode(errors="ignore")


def _subprotocols(socket: StreamSocket) -> list[str]:
    raw = socket.scope.get("subprotocols") or []
    return [str(p) for p in raw]


def _header(socket: StreamSocket, name: bytes) -> str | None:
    """One request header, read from the scope: ``socket.headers`` would parse and keep every header
    the client sent for the life of the connection (about 1 KB each)."""
    for key, value in socket.scope["headers"]:
        if key.lower() == name:  # names keep the case the client sent (uvicorn passes them raw)
            return bytes(value).decode("latin-1")
    return None


FULL_RETRY_AFTER = 5  # seconds a client refused because the process is full is asked to wait
DENIAL = "websocket.http.response"  # the ASGI extension for an HTTP answer instead of the upgrade


async def refuse_full(socket: StreamSocket, most: int) -> None:
    """The process holds ``most`` connections already: HTTP 503 with ``Retry-After`` instead of the
    upgrade, where the server can (uvicorn): no WebSocket, no authentication, and a load balancer may try
    another instance (nginx ``proxy_next_upstream http_503``). Elsewhere, accepted and closed 1013."""
    reason = f"server full: at most {most} connections here; try again later"
    if DENIAL not in (socket.scope.get("extensions") or {}):
        await socket.accept()
        await socket.close(code=closecodes.TRY_AGAIN_LATER, reason=reason)
        return
    await socket.receive()  # websocket.connect
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"%d" % FULL_RETRY_AFTER)]
    await socket.send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
    body = error_json(503, reason)
    await socket.send({"type": "websocket.http.response.body", "body": body, "more_body": False})


class StreamSocket(Protocol):
    """What the stream uses of a WebSocket connection: Litestar's ``WebSocket`` (the registered route), or
    ``AsgiSocket`` (``legend serve``, past Litestar: ``legend.app.stream_first``)."""

    @property
    def scope(self) -> Any: ...

    @property
    def query_params(self) -> Mapping[str, str]: ...

    async def accept(self, subprotocols: str | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...

    @property
    def receive(self) -> Callable[[], Awaitable[Any]]: ...

    @property
    def send(self) -> Callable[[Any], Awaitable[None]]: ...


class AsgiSocket:
    """A WebSocket connection over the ASGI callables alone. Litestar's ``WebSocket`` keeps two wrapper
    closures, a scope state and the parsed query for the connection's life, and its receive wrapper's
    frame sits on the stack of every idle connection (about 1.2 KB together, bench/bench_memory.py)."""

    __slots__ = ("receive", "scope", "send")

    def __init__(self, scope: Any, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send

    @property
    def query_params(self) -> Mapping[str, str]:
        """The query's parameters, the first of each name (read once, at the handshake)."""
        pairs = parse_qsl(bytes(self.scope.get("query_string") or b"").decode("latin-1"))
        return dict(reversed(pairs))

    async def accept(self, subprotocols: str | None = None) -> None:
        await self.receive()  # websocket.connect
        await self.send({"type": "websocket.accept", "subprotocol": subprotocols, "headers": []})

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})


@websocket("/api/ws", name="stream")
async def stream(
    socket: WebSocket[Any, Any, Any],
    streaming: Service[StreamingService],
    authenticator: Service[Authenticator],
    service_status: Service[ServiceStatusNotifier],
) -> None:
    """The route of ``/api/ws`` in the Litestar application (under any ASGI server: ``legend serve``
    hands the connections to ``serve_stream`` before Litestar)."""
    await serve_stream(socket, streaming, authenticator, service_status)


async def serve_stream(
    socket: StreamSocket,
    streaming: StreamingService,
    authenticator: Authenticator,
    service_status: ServiceStatusNotifier,
) -> None:
    """The streaming protocol (docs/protocol.md). A connection past ``server.max_connections`` is refused
    first, before anything is spent on it; the place of one let in is given back when it ends. One
    coroutine from the handshake to the end: its frame is the only one of ours on an idle connection's
    stack."""
    if not streaming.hold():
        log.debug("refused a connection: this process holds %d already", streaming.max_connections)
        await refuse_full(socket, streaming.max_connections)
        return
    session: Session | None = None
    try:
        counters = streaming.counters
        host, origin = _header(socket, b"host"), _header(socket, b"origin")
        if not (authenticator.host_allowed(host) and authenticator.origin_allowed(origin, host)):
            counters.auth_rejected += 1
            # before accept: HTTP 403
            await socket.close(code=closecodes.FORBIDDEN, reason="origin not allowed")
            return
        offered = _subprotocols(socket)
        try:
            identity = await authenticator.websocket(socket.query_params, offered)
        except AuthError as exc:
            counters.auth_rejected += 1
            # Accept first so that a browser can read the close code and reason.
            await socket.accept(subprotocols=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)
            await socket.close(code=closecodes.UNAUTHORIZED, reason=close_reason(exc.reason))
            return
        await socket.accept(subprotocols=identity.subprotocol)
        # Behind a proxy in server.forwarded_allow_ips, the forwarded client is here already.
        client = socket.scope.get("client")
        address = str(client[0]) if client else "unknown"
        transport = transport_of(socket)
        outcome = await streaming.connect(transport, identity.user_id, address, identity.expires_at)
        if isinstance(outcome, Refusal):
            await socket.close(code=outcome.code, reason=close_reason(outcome.reason))
            return
        session = outcome
        connection_id.set(session.id)  # on every line logged while serving this connection
        service_status.greet(session)  # while the backplane is degraded, say so at once
        reader = asyncio.current_task()
        session.reader = reader
        receive = socket.receive
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                break
            text = event.get("text")
            await streaming.handle_frame(session, text if text is not None else event.get("bytes") or b"")
    except asyncio.CancelledError:
        # close_session cancels the receive loop when the peer would not even take a close frame; any
        # other cancellation (the server stopping) goes on.
        if session is None or not session.closing or (reader is not None and reader.uncancel() > 0):
            raise
    except Exception as exc:
        if session is None:  # a bug of ours: the client still gets a close frame with 1011
            log.exception("the stream of a connection failed")
            with contextlib.suppress(Exception):
                await socket.close(code=closecodes.INTERNAL_ERROR, reason="internal error")
        else:  # the peer vanished mid-receive; nothing to report to it
            log.debug("receive loop of %s ended: %r", session.id, exc)
    finally:
        if session is not None:
            streaming.end_session(session)
        streaming.let_go()
