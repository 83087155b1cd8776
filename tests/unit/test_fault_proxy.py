"""The fault-injecting proxy of the partition tests (tests/support/fault_proxy.py), mode by mode, in front of
an echo server on 127.0.0.1."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.fault_proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, EchoServer)
        while True:
            try:
                data = self.request.recv(65_536)
            except OSError as exc:
                server.errors.append(exc)
                return
            if not data:
                server.closed += 1
                return
            server.received += len(data)
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received = 0
        self.closed = 0
        self.errors: list[OSError] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.port) as fault_proxy:
        yield fault_proxy


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2.0)
    sock.settimeout(2.0)
    return sock


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65_536)
        if not chunk:
            break
        got += chunk
    return got


def wait_for(condition: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB: more than one chunk, written in pieces
        assert roundtrip(sock, big) == big
        assert proxy.connections == 1
    assert wait_for(lambda: proxy.connections == 0)


def test_blackhole_drops_silently_and_keeps_connections_open(proxy: FaultProxy, echo: EchoServer) -> None:
    idle = connect(proxy)
    assert roundtrip(idle, b"before") == b"before"
    cut = connect(proxy)
    assert roundtrip(cut, b"x") == b"x"
    received = echo.received
    proxy.blackhole()
    cut.sendall(b"lost bytes")
    cut.settimeout(0.3)
    with pytest.raises(TimeoutError):  # no reply, and no FIN or RST either: the socket just stays quiet
        cut.recv(16)
    assert wait_for(lambda: proxy.dropped == len(b"lost bytes"))
    assert echo.received == received  # nothing reached the backend
    during = connect(proxy)  # a new connection is accepted, and nothing it sends gets through
    during.sendall(b"?")
    during.settimeout(0.3)
    with pytest.raises(TimeoutError):
        during.recv(16)
    assert proxy.connections == 3  # every connection is still open

    proxy.pass_through()
    assert roundtrip(idle, b"after") == b"after"  # idle through the cut: carries on
    cut.settimeout(0.3)
    cut.sendall(b"more")  # it lost bytes: its stream has a hole, it stays cut
    with pytest.raises(TimeoutError):
        cut.recv(16)
    with connect(proxy) as fresh:
        assert roundtrip(fresh, b"healed") == b"healed"
    cut.close()  # its close is passed on now that the cut is healed
    during.close()
    idle.close()
    assert wait_for(lambda: proxy.connections == 0)


def test_a_close_during_a_blackhole_is_passed_on_once_healed(proxy: FaultProxy, echo: EchoServer) -> None:
    sock = connect(proxy)
    assert roundtrip(sock, b"x") == b"x"
    proxy.blackhole()
    sock.close()
    assert wait_for(lambda: proxy.closes_seen == 1)  # the proxy saw the FIN, and holds it
    assert echo.closed == 0 and proxy.connections == 1
    proxy.pass_through()
    assert wait_for(lambda: echo.closed == 1)
    assert wait_for(lambda: proxy.connections == 0)


def test_reset_closes_every_connection_with_rst(proxy: FaultProxy, echo: EchoServer) -> None:
    sock = connect(proxy)
    assert roundtrip(sock, b"x") == b"x"
    proxy.reset()
    with pytest.raises(ConnectionResetError):
        sock.recv(16)
    sock.close()
    assert wait_for(lambda: any(isinstance(e, ConnectionResetError) for e in echo.errors))
    # accepted, then reset at once (maybe before connect returns)
    with pytest.raises(ConnectionResetError), connect(proxy) as late:
        late.recv(16)
    assert proxy.resets >= 2
    proxy.pass_through()
    with connect(proxy) as again:
        assert roundtrip(again, b"back") == b"back"


def test_delay_adds_latency_per_chunk_and_keeps_order(proxy: FaultProxy) -> None:
    proxy.delay(0.2)
    with connect(proxy) as sock:
        started = time.monotonic()
        assert roundtrip(sock, b"ping") == b"ping"
        assert time.monotonic() - started >= 0.4  # each way waited its 0.2 s
        parts = [f"{n:05d};".encode() for n in range(500)]
        for part in parts:
            sock.sendall(part)
        expected = b"".join(parts)
        got = b""
        while len(got) < len(expected):
            got += sock.recv(65_536)
        assert got == expected
    with pytest.raises(ValueError):
        proxy.delay(-1)


def test_close_closes_every_socket(echo: EchoServer) -> None:
    proxy = FaultProxy(echo.port).start()
    sock = connect(proxy)
    assert roundtrip(sock, b"x") == b"x"
    proxy.close()
    assert sock.recv(16) == b""  # its client side was closed
    sock.close()
    assert wait_for(lambda: echo.closed == 1)
    with pytest.raises(OSError):
        connect(proxy)
    with pytest.raises(RuntimeError):
        proxy.blackhole()
