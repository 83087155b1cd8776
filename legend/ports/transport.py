"""One client connection as the domain sees it: frames out, and ways to close it."""

from __future__ import annotations

from typing import Protocol


class TransportClosed(ConnectionError):
    """The connection is gone: nothing more can be written to it."""


class Transport(Protocol):
    """A connected WebSocket.

    ``write`` is the fan-out's fast path: it hands one frame to the socket without a task switch, and
    declines (False, nothing written) when the socket's buffers are full; the caller then queues the
    message and its writer waits in ``send_text``. A transport that cannot write synchronously always
    declines, and everything goes through ``send_text``.
    """

    def write(self, text: str) -> bool:
        """Write one text frame now if the socket takes it without waiting; False when it would have to
        wait (nothing written). Raises TransportClosed when the connection is gone."""
        ...

    async def send_text(self, text: str) -> None:
        """Write one text frame, waiting while the socket's buffers are full."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame with ``code`` and ``reason`` (the caller bounds how long this may take)."""
        ...

    def abort(self) -> None:
        """Drop the connection now, without a close handshake: for a peer that stopped reading, so that
        its socket, buffers and file descriptor are released at once."""
        ...
