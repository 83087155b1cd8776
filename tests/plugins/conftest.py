"""Fixtures for the plugin tests: in-process services with chosen plugins, and a local HTTP server that
serves feed files with ETag/Last-Modified (and answers conditional requests with 304)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.bootstrap import Services, bootstrap
from legend.settings import DatabaseSettings

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


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            file = state.files.get(self.path)
            record = {"path": self.path, "headers": dict(self.headers)}
            state.requests.append(record)
            if file is None:
                record["status"] = 404
                self.send_response(404)
                self.end_headers()
                return
            fresh = file.conditional and (
                self.headers.get("If-None-Match") == file.etag
                or (
                    self.headers.get("If-Modified-Since") == file.last_modified
                    and not self.headers.get("If-None-Match")
                )
            )
            if fresh:
                record["status"] = 304
                self.send_response(304)
                self.send_header("ETag", file.etag)
                self.end_headers()
                return
            record["status"] = 200
            self.send_response(200)
            self.send_header("Content-Type", file.content_type)
            self.send_header("Content-Length", str(len(file.body)))
            self.send_header("ETag", file.etag)
            self.send_header("Last-Modified", file.last_modified)
            self.end_headers()
            self.wfile.write(file.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
