"""Fixtures for the plugin tests: in-process services with chosen plugins, and a local HTTP server that
serves feed files with ETag/Last-Modified (and answers conditional requests with 304)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import closing
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.bootstrap import Services, bootstrap
from legend.settings import DatabaseSettings
from tests.support.loopback import GetServer

from .helpers import FeedServer, settings_with


@pytest.fixture
async def build(tmp_path: Any) -> AsyncIterator[Callable[..., Services]]:
    """``build(plugins_table, plugins={name: module}, ...)``: services on a fresh SQLite file; started
    services are stopped at the end."""
    made: list[Services] = []

    def make(plugins_table: Mapping[str, Any] | None = None, **kwargs: Any) -> Services:
        settings = kwargs.pop("settings", None) or settings_with(plugins_table or {})
        settings = msgspec.structs.replace(
            settings, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend-{len(made)}.db")
        )
        services = bootstrap(
            settings,
            clock=kwargs.pop("clock", None) or FrozenClock(),
            backplane=kwargs.pop("backplane") if "backplane" in kwargs else InMemoryBackplane(),
            run_quote_poller=kwargs.pop("run_quote_poller", False),
            **kwargs,
        )
        made.append(services)
        return services

    yield make
    for services in made:
        await services.stop()
        if not services.started and services.database is not None:
            await services.database.close()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test: whatever a blocking hook or callback waits on lets go."""
    event = threading.Event()
    yield event
    event.set()


def _serve_feed(state: FeedServer, handler: BaseHTTPRequestHandler) -> None:
    """Answer one GET from ``state``'s files, conditional requests with 304."""
    file = state.files.get(handler.path)
    record = {"path": handler.path, "headers": dict(handler.headers)}
    state.requests.append(record)
    if file is None:
        record["status"] = 404
        handler.send_response(404)
        handler.end_headers()
        return
    fresh = file.conditional and (
        handler.headers.get("If-None-Match") == file.etag
        or (
            handler.headers.get("If-Modified-Since") == file.last_modified
            and not handler.headers.get("If-None-Match")
        )
    )
    if fresh:
        record["status"] = 304
        handler.send_response(304)
        handler.send_header("ETag", file.etag)
        handler.end_headers()
        return
    record["status"] = 200
    handler.send_response(200)
    handler.send_header("Content-Type", file.content_type)
    handler.send_header("Content-Length", str(len(file.body)))
    handler.send_header("ETag", file.etag)
    handler.send_header("Last-Modified", file.last_modified)
    handler.end_headers()
    handler.wfile.write(file.body)


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    state = FeedServer()
    with closing(GetServer(partial(_serve_feed, state)).start()) as http:
        state.port = http.port
        yield state
