"""A streaming service of one instance on in-memory adapters, and what its unit tests do to it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.channels import ChannelRegistry, ChannelSpec
from legend.domain.stats import Counters
from legend.services.streaming.limits import Limits
from legend.services.streaming.publisher import Publisher
from legend.services.streaming.service import StreamingService
from legend.services.streaming.session import Session


def build_streaming(
    clock: FrozenClock | None = None,
    backplane: InMemoryBackplane | None = None,
    channels: Iterable[ChannelSpec] = (),
    **limits: Any,
) -> tuple[StreamingService, Publisher, FrozenClock]:
    """A ``StreamingService`` and a ``Publisher`` sharing one backplane, registry (the built-in channels
    and ``channels``), clock and counters, as bootstrap wires them; ``limits`` are ``Limits`` fields.
    The rest is on the service: ``streaming.backplane``, ``.registry``, ``.counters``."""
    clock = clock or FrozenClock()
    backplane = backplane if backplane is not None else InMemoryBackplane()
    registry = ChannelRegistry()
    for spec in channels:
        registry.register(spec)
    counters = Counters()
    streaming = StreamingService(backplane, registry, clock, Limits(**limits), counters)
    return streaming, Publisher(backplane, registry, clock, counters, history_size=100), clock


async def send(streaming: StreamingService, session: Session, kind: str, **fields: object) -> None:
    """What a client does: send one frame of type ``kind`` (e.g. ``subscribe``, channel=...) through the
    real entry, ``handle_frame``, as the WebSocket adapter passes it."""
    await streaming.handle_frame(session, msgspec.json.encode({"type": kind, **fields}))
