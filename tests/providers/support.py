"""A local HTTP server speaking a vendor's protocol (standard library, in a thread, on 127.0.0.1), recorded
payloads, and a fake time source so that backoff and pacing are checked without waiting."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from legend.adapters.quotes.vendor import Timing
from tests.support.loopback import GetServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def payload(name: str) -> Any:
    """A recorded example answer, e.g. ``payload("finnhub/quote_AAPL.json")``."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Route = Callable[[Request], Reply]


class VendorServer:
    """Answers every GET with ``route(request)``; records requests and the peak of concurrent ones.

    A route may block on ``release`` (``hang``: a vendor that never answers); ``close`` sets it, so no
    handler outlives the test.
    """

    def __init__(self, route: Route | None = None) -> None:
        self.route: Route = route or (lambda request: Reply(404, {"error": "no route"}))
        self.requests: list[Request] = []
        self.release = threading.Event()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._http = GetServer(self._answer).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        request = Request(
            "GET",
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            {k.lower(): v for k, v in handler.headers.items()},
        )
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = self.route(request)
        except Exception as exc:  # a broken route is a 500, visible in the test's failure
            reply = Reply(500, {"error": f"route failed: {exc!r}"})
        finally:
            with self._lock:
                self.in_flight -= 1  # before answering: the client may send the next at once
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up (a timeout test)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def hang(self, request: Request) -> Reply:
        """A route that answers only once the test ends (``close``)."""
        self.release.wait(10)
        return Reply(200, {})

    def close(self) -> None:
        self.release.set()
        self._http.close()


class FakeTime:
    """Monotonic and wall time that move only when the code under test sleeps; sleeps are recorded."""

    def __init__(self, monotonic: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self.now = monotonic
        self.wall_now = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall_now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall_now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.advance(seconds)
        await asyncio.sleep(0)

    @property
    def timing(self) -> Timing:
        return Timing(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep)
