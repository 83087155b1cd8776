"""Alert evaluation of every price in the cluster, exactly once, from the price log.

One instance at a time evaluates (it holds the ``alerts`` lease). It reads the price log in batches,
evaluates each price against the rule index in order, and stores what the batch did to the rules, the
triggers it fired and the new log position in **one transaction**. The position is compared-and-set, so
if two instances ever evaluate at once (a paused holder whose lease ran out), the second one's
transaction fails and it reloads instead of firing anything twice. After a crash or a takeover the next
holder loads the rules and the position from the database and replays the log from there: a price
that was published is evaluated once, whatever died when.

Besides prices, the log carries rule changes and market status (a halt holds every rule). The evaluator
builds its own bars from the prices it evaluates (the same ``BarBuilder`` as bar building, closed by log
time), so a rule evaluated at bar closes sees each close exactly once, between the right two prices, and
keeps the windows and bar series its rules compare with (``alert_features``).

A batch collapses what it did per rule (the first state and the last, and every trigger between), so a
rule that flips back and forth costs one row update per batch, not one per price.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import msgspec

from legend.domain.alert_features import AlertFeatures
from legend.domain.alert_index import Evaluation, Phase, RuleIndex, Transition
from legend.domain.alert_rules import AlertEvent, AlertRule, NewAlertEvent
from legend.domain.alert_runner import RuleRunner
from legend.domain.bar_alignment import SessionLookup
from legend.domain.prices import LoggedPrice, decode_logged_price, price_instant
from legend.ports.bars import BarStore
from legend.ports.clock import Clock
from legend.ports.price_log import LogEntry, PriceLog
from legend.ports.repositories import AlertRepository, PositionMove, RuleChange
from legend.services.alerts.warm_up import WarmUp, replay
from legend.services.leased_loop import HoldLease, LeasedLoop, ReleaseLease

log = logging.getLogger("legend.alerts")

LEASE = "alerts"
BATCH = 1000  # log entries read and stored per transaction, at most
IDLE_SAVE_SECONDS = 5.0  # the position is saved at least this often while prices change no rule


class AlertEvaluation(LeasedLoop):
    """The evaluation loop and the rule index it owns (see the module docstring)."""

    def __init__(
        self,
        repository: AlertRepository,
        price_log: PriceLog,
        hold_lease: HoldLease,
        clock: Clock,
        deliver: Callable[[list[AlertEvent]], Awaitable[None]],
        recover: Callable[[], Awaitable[object]],
        *,
        instance_id: str,
        claim_seconds: float = 30.0,
        lease_ttl: float = 10.0,
        batch: int = BATCH,
        read_wait: float = 1.0,
        zone: str = "UTC",
        session_on: SessionLookup | None = None,
        bars: BarStore | None = None,
        release_lease: ReleaseLease | None = None,
    ) -> None:
        super().__init__(
            LEASE, "alert evaluation", hold_lease, lease_ttl, price_log, batch, clock, log, release_lease
        )
        self.repository = repository
        self.deliver = deliver
        self.recover = recover
        self.instance_id = instance_id
        self.claim = timedelta(seconds=claim_seconds)
        self.read_wait = read_wait
        # the market calendar: where a price lies (regular session, extended hours), bar boundaries; without
        # one (tests, embedding) every instant counts as the regular session
        self.zone, self.session_on = zone, session_on
        self.runner = RuleRunner(RuleIndex(), zone, session_on)
        self.warm_up = WarmUp(price_log, bars)  # windows and bar series from the log and stored bars
        self.saved: str | None = None  # the position as stored in the database
        self._saved_at = 0.0
        self._lock = asyncio.Lock()  # one batch (or direct observation) at a time
        self._last_at: float | None = None  # append time of the last entry taken into account
        self.prices_evaluated = 0  # taken into account completely: stored, and their triggers published
        self._unstored = 0  # evaluated in the batch being built
        self.prices_invalid = 0
        self.rule_changes = 0
        self.triggers_fired = 0

    # ───────────── holding the lease ─────────────

    async def work(self, left: float) -> None:
        """One batch (the read waits ``read_wait`` seconds at most, whatever is ``left`` of the round)."""
        await self.step(self.read_wait)

    async def take_over(self) -> None:
        """This instance holds the lease now: load where the last holder left off, and first publish
        what it stored but did not publish (its claims are void: it no longer holds the lease), so
        that its triggers reach their owners before the ones evaluation fires from here on."""
        await self.load()
        await self.recover()
        self.holder = True
        log.info("alert evaluation: this instance evaluates (%d armed rules)", len(self.evaluator))

    async def load(self) -> None:
        """The rules and the log position as stored: where the last holder left off."""
        async with self._lock:
            self._unstored = 0
            self.runner = RuleRunner(
                RuleIndex(await self.repository.armed_rules(), AlertFeatures()), self.zone, self.session_on
            )
            stored = (
                await self.repository.log_position(self.price_log.name) if self.price_log.durable else None
            )
            self.position = stored if stored is not None else await self.price_log.end()
            self.saved = stored
            self._saved_at = time.monotonic()
            await self.warm_up.takeover(self.runner, self.position)
            if self.price_log.durable and stored is None:
                # Where evaluation starts is stored at once: a crash before the first batch is stored
                # replays from here, instead of starting again at the log's end, past what came meanwhile.
                await self._store({}, self.position)

    # ───────────── evaluating ─────────────

    async def step(self, wait: float) -> list[AlertEvent]:
        """Read and evaluate the next batch of the log (waiting up to ``wait`` for one)."""
        read = await self.read_log(wait, "evaluated")
        if not read.entries:
            self.waiting_since = None  # caught up
            async with self._lock:
                expired = self.evaluator.expire(self.clock.now())  # no price comes: the market is closed
                if expired:
                    changes: dict[int, RuleChange] = {}
                    self._collect(expired, changes)
                    return await self._store(changes, self.position)
                if self.position != self.saved and time.monotonic() - self._saved_at > IDLE_SAVE_SECONDS:
                    await self._store({}, self.position)
            return []
        self.waiting_since = read.entries[0].at
        async with self._lock:
            fired = await self._apply(read.entries)
        self.waiting_since = None
        return fired

    async def observe(self, observation: LoggedPrice, at: datetime | None = None) -> list[AlertEvent]:
        """Take what is in the log so far into account, then evaluate one observation as if it were the
        next price (for callers that hold a price outside the log, such as tests of the rules)."""
        if not self.holder:
            await self.take_over()
        read = await self.price_log.read(self.position, self.batch, 0.0)
        async with self._lock:
            events = await self._apply(read.entries) if read.entries else []
            changes: dict[int, RuleChange] = {}
            when = at or self.clock.now()
            self._evaluate(
                observation, when.timestamp(), price_instant(observation, when.timestamp()), changes
            )
            return events + await self._store(changes, self.position)

    async def _apply(self, entries: list[LogEntry]) -> list[AlertEvent]:
        """Evaluate entries in order; store each run of prices up to a rule change, then apply it."""
        fired: list[AlertEvent] = []
        changes: dict[int, RuleChange] = {}
        position = self.position
        for entry in entries:
            if entry.kind == "rule":
                fired += await self._store(changes, position)
                changes = {}
                await self._refresh([int(entry.data)])
                self.rule_changes += 1
            elif entry.kind == "status":
                replay(self.runner, [entry])
            else:
                try:
                    price = decode_logged_price(entry.data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.prices_invalid += 1
                else:
                    self._evaluate(price, entry.at, price_instant(price, entry.at), changes)
            position = entry.id
            self._last_at = entry.at
        return fired + await self._store(changes, position)

    @property
    def evaluator(self) -> RuleIndex:
        """The index of armed rules (a new one at each takeover)."""
        return self.runner.index

    @property
    def halted(self) -> bool:
        return self.runner.halted

    def phase(self, instant: datetime) -> Phase:
        """Where ``instant`` lies: regular session, extended hours, or neither."""
        return self.runner.phase(instant)

    def _evaluate(
        self, price: LoggedPrice, at: float, instant: datetime, changes: dict[int, RuleChange]
    ) -> None:
        """One price of the log (appended at ``at``; ``instant``: where it lies in time)."""
        when = datetime.fromtimestamp(at, UTC)
        for evaluation in self.runner.price(
            price.ticker, price.price, price.change_percent, price.volume, when, instant
        ):
            self._take(evaluation, changes)

    def _take(self, evaluation: Evaluation, changes: dict[int, RuleChange]) -> None:
        self.evaluator.commit(evaluation, evaluation.transitions)  # stored with the batch, or reloaded
        self._unstored += 1
        self._collect(evaluation.transitions, changes)

    @staticmethod
    def _collect(transitions: list[Transition], changes: dict[int, RuleChange]) -> None:
        """Fold transitions into a batch's changes: per rule, the first state, the last, every trigger."""
        for step in transitions:
            change = changes.get(step.before.id)
            events: list[NewAlertEvent] = [step.event] if step.event is not None else []
            if change is None:
                changes[step.before.id] = RuleChange(step.before, step.after, events)
            else:
                changes[step.before.id] = RuleChange(change.before, step.after, change.events + events)

    async def _store(self, changes: dict[int, RuleChange], position: str | None) -> list[AlertEvent]:
        """Store a batch's rule changes, triggers and position in one transaction; then deliver."""
        move: PositionMove | None = None
        if self.price_log.durable and position is not None and position != self.saved:
            move = PositionMove(self.price_log.name, self.saved, position)
        if changes or move is not None:
            at = self.clock.now()
            recorded = await self.repository.record_changes(
                list(changes.values()), self.instance_id, at + self.claim, move
            )
            if move is not None:
                self.saved, self._saved_at = position, time.monotonic()
            if recorded.conflicts:
                await self._refresh(recorded.conflicts)
            events = recorded.events
        else:
            events = []
        self.position = position
        if events:
            self.triggers_fired += len(events)
            await self.deliver(events)
        self.prices_evaluated += self._unstored
        self._unstored = 0
        return events

    async def _refresh(self, rule_ids: list[int]) -> None:
        """Take the stored state of rules that changed elsewhere (or whose change a batch lost to)."""
        stored = {rule.id: rule for rule in await self.repository.rules_by_id(rule_ids)}
        for rule_id in rule_ids:
            rule: AlertRule | None = stored.get(rule_id)
            if rule is None or not rule.armed:
                self.evaluator.remove(rule_id)
            else:
                self.evaluator.upsert(rule)
        # a window or series nobody kept yet: filled from the log and the stored bars up to this point
        at = datetime.fromtimestamp(self._last_at, UTC) if self._last_at is not None else self.clock.now()
        await self.warm_up.fresh(self.runner, self.position, at)

    def tickers(self) -> set[str]:
        """Tickers with armed rules (known to the holder only; the quote poller polls them cluster-wide)."""
        return self.evaluator.tickers() if self.holder else set()

    def status(self) -> dict[str, object]:
        age = None if self._last_at is None else max(0.0, self.clock.now().timestamp() - self._last_at)
        return {
            "evaluating": self.holder,
            "armed_rules": len(self.evaluator) if self.holder else None,
            "log": self.price_log.name,
            "position": self.position,
            "last_price_age": age,
            "lag": self.lag(),
            "prices_evaluated": self.prices_evaluated,
            "prices_invalid": self.prices_invalid,
            "halted": self.halted,
            "windows": len(self.evaluator.features.windows) if self.holder else None,
            "bar_series": len(self.evaluator.features.series) if self.holder else None,
            "log_gaps": self.log_gaps,
            "rule_changes": self.rule_changes,
            "position_conflicts": self.position_conflicts,
            "handed_over": self.handed_over,
            "failures": self.failures,
            "last_error": self.last_error,
        }
