"""The backplane: how a published message reaches every server instance, with its sequence and history.

The in-memory backplane serves one process; the Redis backplane serves a cluster. Both assign each
stream's sequence number and append to its history in one step with the publish, so any instance can
replay any stream for any client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec

from legend.domain.envelope import Envelope

Deliver = Callable[[Envelope], None]


class BackplaneUnavailable(RuntimeError):
    """The backplane cannot publish right now (Redis down); the caller must report the failure."""


class Replay(msgspec.Struct, frozen=True):
    """What a stream's history holds after ``since``.

    ``complete`` is False when the history no longer reaches back to ``since`` (messages were lost to
    the client); ``last_seq`` is the stream's newest sequence number (0 before its first message).
    """

    envelopes: list[Envelope]
    last_seq: int
    complete: bool


class Backplane(Protocol):
    """Publish to streams, deliver to this instance, keep per-stream sequence and history."""

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering every published envelope (from any instance) to ``deliver``."""
        ...

    async def stop(self) -> None:
        """Stop delivering and release connections; must not hang when the backend is down."""
        ...

    async def publish(
        self, stream: str, topic: str, kind: str, body: bytes, history_size: int, key: str = ""
    ) -> Envelope:
        """Sequence, remember and fan out one message (``key``: its conflation key, see
        ``envelope.conflation_key``); raises BackplaneUnavailable."""
        ...

    async def replay(self, stream: str, since: int | None) -> Replay:
        """History of ``stream`` after ``since`` (all of it when None)."""
        ...

    async def set_interest(self, tickers: Iterable[str]) -> None:
        """The tickers this instance's clients watch (the streamer polls the union across instances)."""
        ...

    async def interest(self) -> set[str]:
        """Tickers watched anywhere in the cluster."""
        ...

    async def hold_lease(self, name: str, ttl: float) -> bool:
        """Take or renew a cluster-wide lease; True while this instance holds it."""
        ...

    def health(self) -> dict[str, object]:
        """Backend state for /ready and stats: at least ``{"ok": bool, "backend": str}``."""
        ...
