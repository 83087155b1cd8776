"""Bar building for the whole cluster, exactly once, from the price log (docs/bars.md, "The builder").

One instance at a time builds (it holds the ``bars`` lease), the discipline of alert evaluation: it reads
the price log in batches from the position stored with the bars, puts each price into its bars
(``BarBuilder``), closes the bars whose end has passed on the injected clock, and stores the bars the
batch changed (closed ones and the open ones' new figures) with the new position in **one** write. The
position is compared-and-set: a builder that lost its lease stores nothing once its successor has
written (``PositionConflict``), so two instances never store two versions of a bar. A successor (after a
crash, a takeover or a conflict) restores the stored open bars and replays the log from the stored
position.

Publishing: the closed bars of a batch are published **before** the write that stores them; the bars
channel publishes a closed bar under an idempotency key (``once``), so a successor that rebuilds a bar
its predecessor published but did not store has the second copy refused (``AlreadyPublished``). A closed
bar is therefore delivered exactly once, and stored once. Open bars are published as they change (the
latest figures of each per batch; the channel conflates them), needing no key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

import msgspec

from legend.domain.bar_alignment import SessionLookup
from legend.domain.bar_building import BarBuilder
from legend.domain.bars import Bar
from legend.domain.events import BarsClosed
from legend.domain.prices import decode_logged_price, price_instant
from legend.ports.backplane import AlreadyPublished, BackplaneUnavailable
from legend.ports.bars import BarStore
from legend.ports.clock import Clock
from legend.ports.price_log import LogEntry, PriceLog
from legend.ports.repositories import PositionMove
from legend.runtime.message_bus import MessageBus
from legend.services.leased_loop import HoldLease, LeasedLoop, ReleaseLease

log = logging.getLogger("legend.bars")

LEASE = "bars"
BATCH = 1000  # log entries read, built and stored per write, at most
TICK_SECONDS = 1.0  # due bars close at least this often, prices or not
STORE_SECONDS = 1.0  # what changed gathers this long before one write (the open bars' latest figures)
PUBLISH_SECONDS = 0.25  # an open bar's updates gather this long before the newest is published
READ_SECONDS = 0.2  # the log is read at most this often: prices gather into batches
YIELD_EVERY = 250  # prices built between two yields to the event loop: the fan-out shares the loop

#: Publishes one bar on the bars channel (``Publisher.publish_bar``); None back for a closed bar that was
#: published already (a predecessor's), or AlreadyPublished raised.
PublishBar = Callable[[Bar], Awaitable[object]]


def _key(bar: Bar) -> tuple[str, str, datetime]:
    return bar.ticker, bar.interval, bar.start


class BarBuilding(LeasedLoop):
    """The build loop and the ``BarBuilder`` it owns (see the module docstring).

    ``zone`` and ``session_on`` are the market calendar's; ``publish_bar`` publishes one bar on the bars
    channel (None: bars are stored only). ``tick`` is how often due bars close without prices. The closed
    bars this builder published are announced on ``bus`` (``BarsClosed``), once each, before they are stored.
    """

    def __init__(
        self,
        store: BarStore,
        price_log: PriceLog,
        hold_lease: HoldLease,
        clock: Clock,
        zone: str,
        session_on: SessionLookup,
        publish_bar: PublishBar | None,
        *,
        lease_ttl: float = 10.0,
        batch: int = BATCH,
        tick: float = TICK_SECONDS,
        store_every: float = STORE_SECONDS,
        publish_every: float = PUBLISH_SECONDS,
        read_every: float = READ_SECONDS,
        bus: MessageBus | None = None,
        release_lease: ReleaseLease | None = None,
    ) -> None:
        if batch < 1 or tick <= 0 or min(store_every, publish_every, read_every) < 0:
            raise ValueError(
                "batch must be >= 1, tick > 0, store_every, publish_every and read_every >= 0, got "
                f"{batch}, {tick}, {store_every}, {publish_every} and {read_every}"
            )
        super().__init__(
            LEASE, "bar building", hold_lease, lease_ttl, price_log, batch, clock, log, release_lease
        )
        self.store = store
        self.zone = zone
        self.session_on = session_on
        self.publish_bar = publish_bar
        self.bus = bus
        self.tick = tick
        self.builder = BarBuilder(zone, session_on)
        self.saved: str | None = None  # the position as stored with the bars
        self.store_every = store_every  # seconds the changes gather before one write (0: every batch)
        self._unstored: dict[tuple[str, str, datetime], Bar] = {}  # built and published, not stored yet
        self._unstored_prices = 0
        self._stored_at: datetime | None = None  # the clock when the bars were last written
        self.publish_every = publish_every  # seconds an open bar's updates gather before one is published
        self._unpublished: dict[tuple[str, str, datetime], Bar] = {}  # open bars changed since then
        self._published_at: datetime | None = None
        self.read_every = read_every  # seconds between two reads of the log at the least
        self._read_at = -math.inf  # time.monotonic() of the last read
        self._retired = (0, 0)  # corrections and late drops of the builders replaced by a reload
        self.prices_built = 0  # stored: their bars written with the position past them
        self.prices_invalid = 0
        self.bars_written = 0
        self.bars_published = 0
        self.publish_failures = 0
        self.restore_failures = 0

    @property
    def corrections(self) -> int:
        """Closed bars changed by a late price (each correction is stored again)."""
        return self._retired[0] + self.builder.corrections

    @property
    def late_dropped(self) -> int:
        """Bar updates dropped because the price's bar was no longer held (docs/bars.md)."""
        return self._retired[1] + self.builder.late_dropped

    # ───────────── holding the lease ─────────────

    async def work(self, left: float) -> None:
        """One batch; the read waits ``tick`` seconds at most (due bars close at least that often)."""
        await self.step(min(self.tick, left))

    async def take_over(self) -> None:
        """This instance holds the lease now: go on from where the stored bars and position end."""
        await self.load()
        self.holder = True
        log.info("bar building: this instance builds the bars (from %s)", self.position)

    async def load(self) -> None:
        """A fresh builder with the stored open bars, and the stored position (the start of the log when none
        is stored or the log does not outlive a process)."""
        builder = BarBuilder(self.zone, self.session_on)
        stored_bars = await self.store.open_bars()
        try:
            builder.restore(stored_bars)
        except ValueError as exc:  # the exchange no longer fits them (market.calendar changed)
            self.restore_failures += 1
            log.error("bar building: the %d stored open bars are not taken over: %s", len(stored_bars), exc)
        stored = await self.store.position(self.price_log.name)
        # Without a stored position in this log (the first start; or a log that lives as long as its process),
        # from the start of the log: the prices logged before this take-over (the first ones after a start
        # come before it) are built too, and an old log's retained prices make bars as a backlog does.
        position = stored if stored is not None and self.price_log.durable else None
        old = self.builder
        self._retired = (self._retired[0] + old.corrections, self._retired[1] + old.late_dropped)
        self.builder, self.saved, self.position = builder, stored, position
        self._unstored, self._unstored_prices, self._stored_at = {}, 0, None  # built again from ``stored``
        self._unpublished, self._published_at = {}, None
        self.waiting_since = None

    # ───────────── building ─────────────

    async def step(self, wait: float) -> list[Bar]:
        """Build the next batch of the log (waiting up to ``wait`` for one), close the bars due by the
        clock, publish and store what changed; returns the bars stored (closed ones first)."""
        # A read of the log at most every ``read_every``: prices gather into batches instead of one query a
        # price (a database price log costs a query a read; the bars and their updates wait no longer than
        # their publishing does anyway).
        spacing = self._read_at + self.read_every - time.monotonic()
        if spacing > 0:
            await asyncio.sleep(spacing)
            wait = max(0.0, wait - spacing)
        self._read_at = time.monotonic()
        read = await self.read_log(wait, "built into bars")
        changed: dict[tuple[str, str, datetime], Bar] = {}
        position, prices = self.position, 0
        if read.entries:
            self.waiting_since = read.entries[0].at
        for entry in read.entries:
            if entry.kind == "price":
                prices += 1
                self._build(entry, changed)
                if prices % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            position = entry.id
        now = due = self.clock.now()
        if len(read.entries) >= self.batch:  # catching up: close only what the log's own time has passed,
            # or the next batch's prices would all come after their bars closed (dropped as late)
            due = min(now, datetime.fromtimestamp(read.entries[-1].at, UTC))
        for bar in self.builder.close_due(due):
            changed[_key(bar)] = bar
        closed = sorted((bar for bar in changed.values() if bar.closed), key=lambda bar: bar.start)
        forming = [bar for bar in changed.values() if not bar.closed]
        await self._publish_closed(closed)  # before the write: a successor's copy is refused
        self.position = position
        self._unstored.update(changed)
        self._unstored_prices += prices
        stored = await self._store(now)
        self.waiting_since = None
        await self._publish_forming(forming, closed, now)
        return stored

    async def _store(self, now: datetime) -> list[Bar]:
        """Write what changed since the last write with the position, once ``store_every`` has passed since
        it: a closed bar is written once, an open one with its latest figures at most once a write,
        whatever the number of prices and batches that moved it. What is not stored yet a successor
        builds again from the stored position (the closed bars it publishes again are refused)."""
        if self.position is None or (not self._unstored and self.position == self.saved):
            return []  # nothing read yet, or nothing new
        if self._stored_at is not None and (now - self._stored_at).total_seconds() < self.store_every:
            return []
        bars = sorted(self._unstored.values(), key=lambda bar: (not bar.closed, bar.start))
        await self.store.write(bars, PositionMove(self.price_log.name, self.saved, self.position))
        self.saved, self._stored_at = self.position, now
        self.bars_written += len(bars)
        self.prices_built += self._unstored_prices
        self._unstored, self._unstored_prices = {}, 0
        return bars

    def _build(self, entry: LogEntry, changed: dict[tuple[str, str, datetime], Bar]) -> None:
        try:
            price = decode_logged_price(entry.data)
            bars = self.builder.add(
                price.ticker, price.price, int(price.volume), price_instant(price, entry.at)
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, OverflowError):
            self.prices_invalid += 1  # not a price (or outside the calendar): it makes no bar
            return
        for bar in bars:
            changed[_key(bar)] = bar

    async def _publish_closed(self, bars: Iterable[Bar]) -> None:
        """Each closed bar, at most once (a copy a predecessor published is refused). The backplane down
        raises: nothing is stored, and the bars are built and published again after the reload."""
        if self.publish_bar is None:
            return
        published: list[Bar] = []
        try:
            for bar in bars:
                try:
                    if await self.publish_bar(bar) is None:
                        continue  # a predecessor published it before it died: refused
                except AlreadyPublished:
                    continue
                except BackplaneUnavailable:
                    self.publish_failures += 1
                    raise
                except Exception:  # a bar the channel refuses must not stop the bars from being stored
                    self.publish_failures += 1
                    log.exception("bar building: %s %s %s not published", bar.ticker, bar.interval, bar.start)
                    continue
                self.bars_published += 1
                published.append(bar)
        finally:  # those that went out are announced even when a later one could not (it is built again)
            if published and self.bus is not None:
                self.bus.publish(BarsClosed(tuple(published)))

    async def _publish_forming(self, forming: Iterable[Bar], closed: Iterable[Bar], now: datetime) -> None:
        """The open bars' latest figures, each at most once every ``publish_every``: a busy ticker's prices
        would otherwise publish five bar updates each, which the channel conflates away anyway (newest
        wins); one lost is made good by the next update."""
        pending = self._unpublished
        for bar in closed:
            pending.pop(_key(bar), None)  # published closed already
        for bar in forming:
            pending[_key(bar)] = bar
        if self.publish_bar is None or not pending:
            return
        if self._published_at is not None and (now - self._published_at).total_seconds() < self.publish_every:
            return
        bars, self._unpublished, self._published_at = list(pending.values()), {}, now
        for bar in bars:
            try:
                await self.publish_bar(bar)
            except BackplaneUnavailable as exc:
                self.publish_failures += 1
                log.warning("bar building: open bars not published: %s", exc)
                return
            except Exception:
                self.publish_failures += 1
                log.exception("bar building: %s %s %s not published", bar.ticker, bar.interval, bar.start)
                continue
            self.bars_published += 1

    # ───────────── figures ─────────────

    def status(self) -> dict[str, object]:
        return {
            "enabled": True,
            "leader": self.holder,
            "log": self.price_log.name,
            "position": self.position,
            "lag": self.lag(),
            "prices_built": self.prices_built,
            "prices_invalid": self.prices_invalid,
            "bars_written": self.bars_written,
            "bars_published": self.bars_published,
            "corrections": self.corrections,
            "late_dropped": self.late_dropped,
            "log_gaps": self.log_gaps,
            "publish_failures": self.publish_failures,
            "restore_failures": self.restore_failures,
            "position_conflicts": self.position_conflicts,
            "handed_over": self.handed_over,
            "failures": self.failures,
            "last_error": self.last_error,
        }
