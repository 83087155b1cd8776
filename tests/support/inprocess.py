"""A real uvicorn server in the test's own event loop, over services the test holds: it can publish through
them (``services.publisher``) while real WebSocket clients listen on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from legend.adapters.http.websocket_protocol import protocol_class
from legend.app import create_app, stream_first
from legend.bootstrap import Services
from tests.support.server import free_port


@asynccontextmanager
async def serving(services: Services) -> AsyncIterator[str]:
    """Serve ``services`` (started and stopped by the app's lifespan); yields the WebSocket URL."""
    port = free_port()
    realtime, server_settings = services.settings.realtime, services.settings.server
    config = uvicorn.Config(
        stream_first(create_app(services=services), services),  # as legend serve runs it
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=protocol_class(
            realtime.close_timeout, server_settings.ws_send_buffer, server_settings.ws_deflate_min_bytes
        ),
        ws_per_message_deflate=server_settings.ws_per_message_deflate,
        lifespan="on",
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()  # the start failed: say why
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"ws://127.0.0.1:{port}/api/ws"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
