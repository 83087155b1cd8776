"""One client connection as the domain sees it: frames out, and a way to close."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """A connected WebSocket."""

    async def send_text(self, text: str) -> None:
        """Write one text frame; blocks while the socket's buffers are full."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame with ``code`` and ``reason``."""
        ...
