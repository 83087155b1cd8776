"""The backplane: how a published message reaches every server instance, with its sequence and history.

The in-memory backplane serves one process; the Redis backplane serves a cluster. Both assign each
stream's sequence number and append to its history in one step with the publish, so any instance can
replay any stream for any client. Which instances are alive, what they watch and which leases they hold
is ``ports.cluster``'s. The price log (``ports.price_log``) and the connection registry
(``ports.admission``) are ports of their own: the adapters implement them too, on the same connection
(a price enters the log in the step that publishes it), and the composition root wires each separately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from legend.domain.envelope import Envelope

Deliver = Callable[[Envelope], None]


class BackplaneUnavailable(RuntimeError):
    """The backplane cannot publish right now (Redis down); the caller must report the failure."""


class Fenced(BackplaneUnavailable):
    """A publish made on behalf of a lease (``Outgoing.fence``) that another instance took over since:
    refused, nothing published. The caller lost the lease and must stop acting as its holder."""


class AlreadyPublished(Exception):
    """A publish with ``once`` whose key was published already (within the backplane's window)."""


class Outgoing(msgspec.Struct, frozen=True):
    """One message to publish on ``stream`` (``topic``, its wire ``kind`` and encoded ``body``), the one
    shape ``publish`` and ``publish_many`` take: ``history_size`` bounds the stream's history, ``key`` is
    its conflation key, ``once`` its idempotency key (alert triggers, closed bars), ``final`` whether it is
    the last value of its key (``envelope.is_final``: a closed bar). ``fence`` (lease name, token from
    ``ClusterMembership.fence``) makes the publish conditional on that holding still being current:
    Fenced otherwise, so a holder that was frozen or cut past its lease cannot publish after a takeover.
    ``must_deliver``: kept beyond the stream's history for a while (``ChannelSpec.keeps``), so that an
    instance whose subscription was away longer than the history covers still gets it."""

    stream: str
    topic: str
    kind: str
    body: bytes
    history_size: int
    key: str = ""
    once: str | None = None
    final: bool = False
    fence: tuple[str, int] | None = None
    must_deliver: bool = False


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

    async def publish(self, message: Outgoing) -> Envelope:
        """Sequence, remember and fan out one message (``key``: its conflation key, see
        ``envelope.conflation_key``); a ``price_update`` also enters the price log, in the same step.
        With ``once``, a second publish of the same key is refused with AlreadyPublished (alert triggers:
        a retry after a crash must not reach the user twice). Raises BackplaneUnavailable."""
        ...

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[Envelope | None]:
        """``publish`` for each message, in order, in one round trip where the backend allows; None for
        a message whose ``once`` was published already. Raises BackplaneUnavailable (any of them may
        have been published: retry with ``once``)."""
        ...

    async def replay(self, stream: str, since: int | None) -> Replay:
        """History of ``stream`` after ``since`` (all of it when None)."""
        ...

    def health(self) -> dict[str, object]:
        """Backend state for /ready and stats: at least ``{"ok": bool, "backend": str}``. A backplane that
        can degrade (Redis) announces each change of ``ok`` on the bus it is built with
        (``legend.domain.events.BackplaneHealthChanged``); the in-memory one never degrades."""
        ...
