"""The Transport port with no socket behind it, for tests of the domain: keeps every frame written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from legend.ports.clock import Clock
from legend.ports.transport import TransportClosed


class RecordingTransport:
    """Takes every frame at once (the fast path), as a socket with room to spare would."""

    def __init__(self, sink: list[str] | None = None) -> None:
        self.texts: list[str] = sink if sink is not None else []
        self.closed: tuple[int, str] | None = None
        self.aborted = False

    def write(self, text: str) -> bool:
        if self.closed is not None or self.aborted:
            raise TransportClosed("closed")
        self.texts.append(text)
        return True

    async def send_text(self, text: str) -> None:
        self.texts.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.aborted = True

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.texts]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]


class AwaitedTransport(RecordingTransport):
    """Declines every synchronous write, as a plain ASGI transport does: everything goes through the
    session's writer task and ``send_text``."""

    def write(self, text: str) -> bool:
        return False


class StuckTransport(AwaitedTransport):
    """A socket whose peer stopped reading: no write ever completes, and the close frame never goes out."""

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        await asyncio.Event().wait()


class BrokenTransport(AwaitedTransport):
    """A socket that fails on its first awaited write (the peer vanished)."""

    async def send_text(self, text: str) -> None:
        raise ConnectionResetError("peer gone")


class GatedTransport(RecordingTransport):
    """A socket whose buffers the test fills and drains: while full, ``write`` declines and ``send_text``
    waits until ``drain()``. Each frame is kept with the clock time its write began (``times``): the time
    its budget was taken."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self.times: list[float] = []
        self._room = asyncio.Event()
        self._room.set()

    @property
    def full(self) -> bool:
        return not self._room.is_set()

    def fill(self) -> None:
        self._room.clear()

    def drain(self) -> None:
        self._room.set()

    def write(self, text: str) -> bool:
        if self.closed is not None or self.aborted:
            raise TransportClosed("closed")
        if self.full:
            return False
        self.texts.append(text)
        self.times.append(self._clock.monotonic())
        return True

    async def send_text(self, text: str) -> None:
        started = self._clock.monotonic()
        await self._room.wait()
        if self.aborted:
            raise TransportClosed("aborted")
        self.texts.append(text)
        self.times.append(started)
