"""``ForwardedClient``: uvicorn's proxy-header rewrite, handing over the application's own awaitable (no
frame of its own kept for a WebSocket connection's life)."""

from __future__ import annotations

import asyncio
from typing import Any

from legend.adapters.http.wrappers import ForwardedClient


async def _app(scope: Any, receive: Any, send: Any) -> None:
    scope["served"] = True


def _scope(peer: str, forwarded: bytes) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded), (b"x-forwarded-proto", b"https")]
    return {"type": "websocket", "client": (peer, 4000), "scheme": "ws", "headers": headers}


def test_a_trusted_proxy_names_the_client_and_the_app_runs_as_its_own_coroutine() -> None:
    scope = _scope("127.0.0.1", b"203.0.113.7")
    awaitable = ForwardedClient(_app, ["127.0.0.1"])(scope, None, None)
    assert scope["client"] == ("203.0.113.7", 0) and scope["scheme"] == "wss"
    assert getattr(awaitable, "cr_code", None) is _app.__code__  # nothing of ours awaits it
    asyncio.run(awaitable)
    assert scope["served"] is True


def test_an_untrusted_peer_keeps_its_own_address() -> None:
    scope = _scope("127.0.0.2", b"203.0.113.7")
    asyncio.run(ForwardedClient(_app, ["127.0.0.1"])(scope, None, None))
    assert scope["client"] == ("127.0.0.2", 4000) and scope["scheme"] == "ws" and scope["served"]
