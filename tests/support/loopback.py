"""Addresses on 127.0.0.1 for the processes the tests start (legend, nginx, redis, …)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackHttp:
    """The HTTP and WebSocket URLs of a server listening on ``self.port`` (legend itself, or nginx in front)."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws"
