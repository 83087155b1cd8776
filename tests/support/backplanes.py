"""Test doubles of the backplane: the in-memory one, with a hook before each publish."""

from __future__ import annotations

from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.envelope import Envelope
from legend.ports.backplane import Outgoing


class InterceptedBackplane(InMemoryBackplane):
    """The memory backplane, with a test's ``before_publish(stream)`` run before each publish: raise to
    make it fail (an outage, a crash), wait to make it slow."""

    async def before_publish(self, stream: str) -> None:
        pass

    async def publish(self, message: Outgoing) -> Envelope:
        await self.before_publish(message.stream)
        return await super().publish(message)
