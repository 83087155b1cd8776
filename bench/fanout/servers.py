"""The reference servers Legend is measured against, each a few lines on purpose.

    python -m bench.fanout.servers {litestar,picows,socketio} PORT

* ``litestar``: the ceiling of our stack. Litestar under uvicorn (``websockets-sansio``, no per-message
  deflate: the bench's clients offer none, so Legend negotiates none either), one WebSocket route, and a POST route that sends the posted frame to every
  subscribed socket in one loop: no queue, no task per connection.
* ``picows``: the limit of Python here. A framework-free picows server on uvloop; it publishes what it is
  sent on ``/publish`` to every subscriber in one loop of synchronous writes, and answers once no socket
  is over its write buffer (the loop above waits on the same condition).
* ``socketio``: the peer a Python team would otherwise pick. python-socketio, ASGI under the same
  uvicorn, one room; POST /broadcast emits the posted frame (decoded once) to the room.

Every server answers ``GET /health``, replies ``ACK`` to a client's first frame (its subscribe) and
answers a publish with ``{"recipients": N}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.fanout.frames import ACK, SIO_ROOM

HOST = "127.0.0.1"


def _uvicorn(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=HOST,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )


def serve_litestar(port: int) -> None:
    from litestar import Litestar, Request, WebSocket, get, post, websocket

    sockets: set[WebSocket[Any, Any, Any]] = set()

    @websocket("/ws")
    async def stream(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            while True:
                event = await socket.receive()
                if event["type"] != "websocket.receive":
                    break
                if socket not in sockets:  # the first frame (a subscribe) joins the broadcast
                    sockets.add(socket)
                    await socket.send_text(ACK)
        finally:
            sockets.discard(socket)

    @post("/broadcast", status_code=200)
    async def broadcast(request: Request[Any, Any, Any]) -> dict[str, int]:
        text = (await request.body()).decode()
        for socket in tuple(sockets):
            try:
                await socket.send_text(text)
            except Exception:  # closed meanwhile: its own route removes it
                sockets.discard(socket)
        return {"recipients": len(sockets)}

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    _uvicorn(Litestar([stream, broadcast, health]), port)


def serve_picows(port: int) -> None:
    import uvloop
    from picows import (
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_create_server,
    )

    subscribers: set[WSTransport] = set()
    paused: set[WSTransport] = set()
    waiting: list[WSTransport] = []  # publishers owed an answer until no subscriber is paused
    ack = ACK.encode()

    def answer(publisher: WSTransport) -> None:
        publisher.send(WSMsgType.TEXT, b'{"recipients":%d}' % len(subscribers))

    class Subscriber(WSListener):  # type: ignore[misc]
        transport: WSTransport | None = None

        def on_ws_connected(self, transport: WSTransport) -> None:
            self.transport = transport

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type == WSMsgType.TEXT and transport not in subscribers:
                subscribers.add(transport)
                transport.send(WSMsgType.TEXT, ack)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            subscribers.discard(transport)
            self.resume_writing()

        def pause_writing(self) -> None:
            if self.transport is not None:
                paused.add(self.transport)

        def resume_writing(self) -> None:
            if self.transport is not None:
                paused.discard(self.transport)
            if not paused:
                for publisher in waiting:
                    answer(publisher)
                waiting.clear()

    class Publisher(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT:
                return
            payload = frame.get_payload_as_bytes()
            for subscriber in subscribers:
                subscriber.send(WSMsgType.TEXT, payload)
            if paused:
                waiting.append(transport)
            else:
                answer(transport)

    def route(request: WSUpgradeRequest) -> Any:
        if request.path == b"/health":
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(b"ok"), None)
        return Publisher() if request.path == b"/publish" else Subscriber()

    async def main() -> None:
        server = await ws_create_server(route, HOST, port, websocket_handshake_timeout=30, backlog=4096)
        await server.serve_forever()

    uvloop.run(main())


def serve_socketio(port: int) -> None:
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    members: set[str] = set()

    @sio.on("subscribe")  # type: ignore[untyped-decorator]
    async def subscribe(sid: str, ticker: str) -> None:
        await sio.enter_room(sid, SIO_ROOM)
        members.add(sid)
        await sio.emit("subscribed", ticker, to=sid)

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, reason: str | None = None) -> None:
        members.discard(sid)

    async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        if scope["method"] == "POST" and scope["path"] == "/broadcast":
            while True:
                event = await receive()
                body += event.get("body", b"")
                if not event.get("more_body"):
                    break
            await sio.emit("price", json.loads(body), room=SIO_ROOM)
            answer = b'{"recipients":%d}' % len(members)
        elif scope["path"] == "/health":
            answer = b'{"status":"ok"}'
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    _uvicorn(socketio.ASGIApp(sio, other_asgi_app=http), port)


SERVERS = {"litestar": serve_litestar, "picows": serve_picows, "socketio": serve_socketio}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in SERVERS:
        print(f"usage: python -m bench.fanout.servers {{{','.join(SERVERS)}}} PORT", file=sys.stderr)
        return 2
    SERVERS[argv[0]](int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
