"""The in-memory backplane: one process, no Redis. The embedded default, and a real product."""

from __future__ import annotations

from collections.abc import Iterable

from legend.domain.envelope import Envelope
from legend.domain.history import StreamLog
from legend.ports.backplane import Deliver, Replay


class InMemoryBackplane:
    """Sequences, remembers and delivers within this process."""

    def __init__(self) -> None:
        self._log = StreamLog()
        self._deliver: Deliver | None = None
        self._interest: set[str] = set()

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def publish(
        self, stream: str, topic: str, kind: str, body: bytes, history_size: int, key: str = ""
    ) -> Envelope:
        envelope = self._log.append(stream, kind, body, history_size, key)
        if self._deliver is not None:
            self._deliver(envelope)
        return envelope

    async def replay(self, stream: str, since: int | None) -> Replay:
        envelopes, complete = self._log.after(stream, since)
        return Replay(envelopes, self._log.last_seq(stream), complete)

    async def set_interest(self, tickers: Iterable[str]) -> None:
        self._interest = set(tickers)

    async def interest(self) -> set[str]:
        return set(self._interest)

    async def hold_lease(self, name: str, ttl: float) -> bool:
        return True

    def health(self) -> dict[str, object]:
        return {"ok": True, "backend": "memory", "streams": self._log.streams()}
