"""``stream_first``: ``/api/ws`` connections go to the handler itself (no Litestar frame kept for the
connection's life); everything else to the app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.http.ws import serve_stream
from legend.app import stream_first
from legend.bootstrap import bootstrap
from legend.settings import DatabaseSettings, Settings


async def _app(scope: Any, receive: Any, send: Any) -> None:
    scope["by_app"] = True


async def _receive() -> Any:
    return {"type": "websocket.disconnect", "code": 1000}


async def _send(message: Any) -> None:
    pass


def test_the_stream_is_its_handler_s_own_coroutine_and_the_rest_is_the_app_s(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, clock=FrozenClock(), run_quote_poller=False)
    served = stream_first(_app, services)
    scope: dict[str, Any] = {"type": "websocket", "path": "/api/ws", "headers": [], "query_string": b""}
    handler = served(scope, _receive, _send)
    assert getattr(handler, "cr_code", None) is serve_stream.__code__  # nothing of ours awaits it
    handler.close()  # type: ignore[attr-defined]
    for other in ({"type": "websocket", "path": "/api/ws/x"}, {"type": "http", "path": "/api/ws"}):
        routed = served(other, _receive, _send)
        assert getattr(routed, "cr_code", None) is _app.__code__
        routed.close()  # type: ignore[attr-defined]


async def test_a_failure_of_the_handler_still_closes_with_1011(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past Litestar, nothing else would send the close frame: the client would see the socket drop (1006)
    instead of the internal error (1011), and the place it held would not be given back."""
    import websockets

    from legend.services.streaming.service import StreamingService
    from tests.support.inprocess import serving

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(StreamingService, "connect", broken)
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, run_quote_poller=False)
    async with serving(services) as url:
        async with websockets.connect(url + "?user_id=u1") as client:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(client.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        assert services.streaming.held == 0  # its place given back
