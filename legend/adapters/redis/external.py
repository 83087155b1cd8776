"""Messages other programs publish in the specification's format (no ``channel``, no ``seq``).

Every instance hears the raw message. The domain decides which stream it belongs to and completes it
(``domain.external``); here exactly one instance sequences it: the publish script with a guard key on the
payload's hash (SET NX) runs first on one instance, which re-publishes it with ``channel`` and ``seq``;
the others find the guard and stand down. The message then comes back through the same topic like any
other.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from legend.adapters.redis import scripts
from legend.adapters.redis.connection import warn
from legend.adapters.redis.sequencer import Sequencer
from legend.domain.external import HISTORY_SIZE, external_message
from legend.ports.backplane import BackplaneUnavailable

INBOX_SIZE = 10_000  # external messages waiting to be sequenced, at most


class ExternalMessages:
    """What the listener hears from other programs, sequenced by ``resequence`` one message at a time,
    in arrival order."""

    def __init__(self) -> None:
        self.resequenced = 0
        self.duplicates = 0
        self.invalid_count = 0
        self.failed = 0
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(INBOX_SIZE)

    def hear(self, channel: str, data: bytes) -> None:
        """A message without ``channel`` and ``seq`` arrived on ``channel``."""
        try:
            self._inbox.put_nowait((channel, data))
        except asyncio.QueueFull:
            self.failed += 1
            warn("external message dropped: %d waiting to be sequenced", INBOX_SIZE)

    def invalid(self, channel: str, reason: str) -> None:
        self.invalid_count += 1
        warn("ignored a message on %s: %s", channel, reason)

    async def resequence(self, sequencer: Sequencer) -> None:
        """Sequence external messages in arrival order, so their order survives: each instance runs its
        scripts in arrival order, so the winner of a later message always runs after the winner of an
        earlier one. Runs until cancelled."""
        keys, connection = sequencer.keys, sequencer.connection
        dedupe_ms = max(1, int(connection.settings.external_dedupe_ttl * 1000))
        while True:
            channel, data = await self._inbox.get()
            parsed = external_message(keys.unprefixed(channel), data, datetime.now(UTC))
            if isinstance(parsed, str):
                self.invalid(channel, parsed)
                continue
            digest = hashlib.sha1(channel.encode() + b"\0" + data).hexdigest()
            history_size = sequencer.history_size.get(channel, HISTORY_SIZE)
            call = sequencer.call(
                channel,
                parsed.stream,
                parsed.kind,
                parsed.body,
                history_size,
                announce=False,
                guard=keys.external(digest),
                guard_ms=dedupe_ms,
                keep_longer=True,  # another program's message never shrinks a stream's history
                must_deliver=parsed.must_deliver,
            )
            try:
                seq = int(await connection.call("resequence", scripts.PUBLISH, *call))
            except BackplaneUnavailable as exc:
                self.failed += 1
                warn("external message on %s lost: %s", channel, exc)
                continue
            if seq:
                self.resequenced += 1
            else:
                self.duplicates += 1
