"""The in-memory backplane: one process, no Redis. The embedded default, and a real product.

It is also the process's cluster membership: a cluster of one, which holds every lease. Its price log is
a LocalPriceLog: in the database by default (``legend.adapters.sql.price_log``: a crash loses no price
whose publish was answered), or in memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from legend.adapters.clock.system import SystemClock
from legend.adapters.memory.price_log import MemoryPriceLog
from legend.adapters.price_log_reads import PriceLogReads
from legend.domain.envelope import Envelope
from legend.domain.history import StreamLog
from legend.domain.prices import price_log_kind
from legend.ports.backplane import AlreadyPublished, Deliver, Outgoing, Replay
from legend.ports.clock import Clock
from legend.ports.cluster import Figures
from legend.ports.price_log import LocalPriceLog


class InMemoryBackplane(PriceLogReads):
    """Sequences, remembers and delivers within this process, and keeps the price log (``price_log``:
    in memory unless given). The Backplane and the ClusterMembership port.

    A price (or a market status) enters the price log first; only once it is there (durable, with the
    database's log) is it sequenced and delivered, so whatever a client sees, alert evaluation sees, after
    a crash too.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        log_size: int = 100_000,
        once_size: int = 100_000,
        price_log: LocalPriceLog | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._log = StreamLog()
        self._deliver: Deliver | None = None
        self._interest: set[str] = set()
        self._figures: Figures | None = None
        self.price_log: LocalPriceLog = price_log or MemoryPriceLog(self._clock, log_size)
        self.name = self.price_log.name
        self.durable = self.price_log.durable
        self._once: OrderedDict[str, None] = OrderedDict()
        self._once_size = once_size
        self._per_user: dict[str, int] = {}  # connections admitted and not released
        self._per_address: dict[str, int] = {}
        self._expected: dict[str, tuple[int, float]] = {}  # address -> (reconnects, until monotonic)

    async def start(self, deliver: Deliver) -> None:
        await self.price_log.start()
        self._deliver = deliver

    async def stop(self) -> None:
        await self.price_log.stop()
        self._deliver = None

    async def publish(self, message: Outgoing) -> Envelope:
        once = message.once
        logged_as = price_log_kind(message.kind, message.stream)
        if logged_as is not None:
            logged = self.price_log.append(logged_as, message.body.decode())
            if logged is not None:
                await logged  # durable before it is sequenced, delivered and answered (in log order)
        if once is not None:
            if once in self._once:
                raise AlreadyPublished(once)
            self._once[once] = None
            if len(self._once) > self._once_size:
                self._once.popitem(last=False)
        envelope = self._log.append(
            message.stream,
            message.kind,
            message.body,
            message.history_size,
            message.key,
            time.monotonic(),
            message.final,
        )
        if self._deliver is not None:
            self._deliver(envelope)
        return envelope

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[Envelope | None]:
        published: list[Envelope | None] = []
        for m in messages:
            try:
                published.append(await self.publish(m))
            except AlreadyPublished:
                published.append(None)
        return published

    async def replay(self, stream: str, since: int | None) -> Replay:
        envelopes, complete = self._log.after(stream, since)
        return Replay(envelopes, self._log.last_seq(stream), complete)

    def health(self) -> dict[str, object]:
        return {
            "ok": True,
            "backend": "memory",
            "streams": self._log.streams(),
            "price_log": self.price_log.status(),
        }

    # ───────────── the cluster: this process alone ─────────────

    async def join(self, figures: Figures) -> None:
        self._figures = figures

    async def leave(self) -> None:
        self._figures = None

    async def set_interest(self, tickers: Iterable[str]) -> None:
        self._interest = set(tickers)

    async def interest(self) -> set[str]:
        return set(self._interest)

    async def hold_lease(self, name: str, ttl: float) -> bool:
        return True

    async def release_lease(self, name: str) -> bool:
        return False  # the only instance: there is nobody to hand it to

    def fence(self, name: str) -> tuple[str, int] | None:
        return None  # the only instance: nobody can take a lease over

    async def cluster(self, wait: float = 0.05) -> dict[str, object]:
        figures = self._figures() if self._figures is not None else {}
        return {"instances": 1, **figures}

    # ───────────── connections per user and address ─────────────

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        users, addresses = self._per_user, self._per_address
        if max_per_user and users.get(user_id, 0) >= max_per_user:
            return "user"
        if max_per_address and addresses.get(address, 0) >= max_per_address:
            return "address"
        users[user_id] = users.get(user_id, 0) + 1
        addresses[address] = addresses.get(address, 0) + 1
        return None

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        for counts, key in ((self._per_user, user_id), (self._per_address, address)):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    async def expect_reconnects(self, addresses: Mapping[str, int], ttl: float) -> None:
        now = self._clock.monotonic()
        for address, count in addresses.items():
            left, until = self._expected.get(address, (0, now))
            self._expected[address] = (count + (left if until > now else 0), now + ttl)

    async def take_reconnect(self, address: str) -> bool:
        left, until = self._expected.pop(address, (0, 0.0))
        if left <= 0 or until <= self._clock.monotonic():
            return False
        if left > 1:
            self._expected[address] = (left - 1, until)
        return True
