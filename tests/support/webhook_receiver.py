"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 (a free port) in a daemon thread that
records each POST (path, headers, raw body) and answers with the next of its scripted answers (the last
one repeats); ``verify_signature`` is the receivers' recipe of docs/alerts.md."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[BaseHTTPRequestHandler], None]


def verify_signature(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The receiver's check of ``X-Legend-Signature`` (``t=<unix seconds>,v1=<hex HMAC-SHA256>``): the HMAC of
    ``"<t>." + raw body`` with the secret, compared in constant time, and ``t`` within ``tolerance`` seconds
    of now (an old request replayed is refused)."""
    t, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1":
            signatures.append(value)
    if t is None or abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    """An answer: ``code`` with ``body`` and ``headers``."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def delayed(seconds: float, then: Answer) -> Answer:
    """``then``, after ``seconds`` of silence."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        then(handler)

    return answer


def endless(code: int, *, chunk: bytes = b"x" * 65536, every: float = 0.0, limit: float = 15.0) -> Answer:
    """``code`` and a body that does not end (no length: HTTP/1.0, until the connection closes): ``chunk``
    every ``every`` seconds, for ``limit`` seconds at most or until the client hangs up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", "text/plain")
        handler.end_headers()
        until = time.monotonic() + limit
        try:
            while time.monotonic() < until:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                if every:
                    time.sleep(every)
        except OSError:
            pass  # the client hung up

    return answer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic()


class WebhookReceiver:
    """``answers`` in turn, one per POST (the last repeats); ``received`` and ``connections`` (accepted TCP
    connections) say what reached it. Plain HTTP unless ``tls`` (a server-side SSLContext) is given."""

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answers = list(answers) or [status(200)]
        self.received: list[Received] = []
        self.connections = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, time.monotonic()))
                    answer = receiver.answers[min(len(receiver.received), len(receiver.answers)) - 1]
                with contextlib.suppress(OSError):  # the sender hung up (gave up, or read all it wanted)
                    answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with receiver._lock:
                    receiver.connections += 1
                return True

        self._lock = threading.Lock()
        self._httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
