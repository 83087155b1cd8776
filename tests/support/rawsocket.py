"""A WebSocket peer on a bare TCP socket that can stop reading, and what the kernel says of sockets.

``websockets`` always reads; a trader's browser tab that froze does not. These peers complete the
handshake, send masked frames, and then read only when told to, with a small receive buffer so that the
server's writes back up quickly.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from typing import Any


class SilentPeer:
    """A client that connects, subscribes, and never reads another byte."""

    def __init__(self, port: int, path: str = "/api/ws?user_id=silent", rcvbuf: int = 4096) -> None:
        """``rcvbuf``: the peer's receive buffer in bytes; 0 leaves it to the kernel, as a browser does."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)

    def read_until_dropped(self, timeout: float) -> bytes:
        """Read everything the server sends, answering nothing (not even a close frame), until it
        closes or resets the connection; TimeoutError if it has not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        received = b""
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return received
            except TimeoutError:
                break
            if not chunk:
                return received
            received += chunk
        raise TimeoutError(f"still connected after {timeout}s; received {received[:200]!r}")

    def close(self) -> None:
        self.sock.close()


def _sockets(local_port: int, remote_ports: set[int] | None) -> list[tuple[str, int]]:
    """(state, send queue bytes) of the TCP sockets on ``local_port`` (to ``remote_ports`` when given)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as file:
                next(file)
                for line in file:
                    fields = line.split()
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    remote = int(fields[2].rsplit(":", 1)[1], 16)
                    if port == local_port and (remote_ports is None or remote in remote_ports):
                        found.append((fields[3], int(fields[4].split(":")[0], 16)))
        except FileNotFoundError:
            continue
    return found


def established(local_port: int, remote_ports: set[int] | None = None) -> int:
    """TCP connections in state ESTABLISHED whose local port is ``local_port`` (and remote port one of
    ``remote_ports``, when given), in this network namespace."""
    return sum(state == "01" for state, _ in _sockets(local_port, remote_ports))


def unsent(local_port: int, remote_ports: set[int] | None = None) -> int:
    """The most bytes any such socket has in its kernel send queue, not yet taken by its peer."""
    return max((queued for _, queued in _sockets(local_port, remote_ports)), default=0)


def lingering(local_port: int, remote_ports: set[int] | None = None) -> list[tuple[str, int]]:
    """Sockets closed on our side that the kernel still keeps with unsent data (FIN-WAIT-1 and the like)."""
    return [
        (state, queued) for state, queued in _sockets(local_port, remote_ports) if queued and state != "01"
    ]


def open_sockets(pid: int) -> int:
    """File descriptors of process ``pid`` that are sockets."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            continue
    return count
