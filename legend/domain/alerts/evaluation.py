"""Alert evaluation of every price in the cluster, exactly once, from the price log.

One instance at a time evaluates (it holds the ``alerts`` lease). It reads the price log in batches,
evaluates each price against the rule index in order, and stores what the batch did to the rules, the
triggers it fired and the new log position in **one transaction**. The position is compared-and-set, so
if two instances ever evaluate at once (a paused holder whose lease ran out), the second one's
transaction fails and it reloads instead of firing anything twice. After a crash or a takeover the next
holder loads the rules and the position from the database and replays the log from there: a price
that was published is evaluated once, whatever died when.

A batch collapses what it did per rule (the first state and the last, and every trigger between), so a
rule that flips back and forth costs one row update per batch, not one per price.

Delivery is pipelined: once a batch is stored, its triggers go to one ordered sender task that publishes
and marks them, while the loop reads, evaluates and stores the next batch. Nothing is lost by that: a
stored trigger is claimed by this instance, so if the process dies with triggers still queued, the retry
loop or the next holder publishes them (at most once, by the backplane's once-key). The queue is bounded
(``SEND_QUEUE`` batches), so a slow backplane slows evaluation down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec

from legend.domain.alert_index import AlertEvaluator, Observation
from legend.domain.alert_rules import AlertEvent, AlertRule, NewAlertEvent
from legend.domain.backoff import Backoff
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.price_log import LogEntry, PriceLog
from legend.ports.repositories import AlertRepository, PositionConflict, PositionMove, RuleChange

log = logging.getLogger("legend.alerts")

LEASE = "alerts"
BATCH = 1000  # log entries read and stored per transaction, at most
IDLE_SAVE_SECONDS = 5.0  # the position is saved at least this often while prices change no rule
SEND_QUEUE = 4  # stored batches waiting for the sender, at most, before evaluation waits for it


class _Sending(NamedTuple):
    """A stored batch on its way out: its triggers, how many prices it took into account, and who waits."""

    events: list[AlertEvent]
    prices: int
    done: asyncio.Future[None] | None


class _Price(msgspec.Struct):
    """The fields of a ``price_update`` that rules watch; the rest of the frame is not decoded."""

    ticker: str
    price: float
    change_percent: float = 0.0
    volume: float = 0.0


_decode_price = msgspec.json.Decoder(_Price).decode


class AlertEvaluation:
    """The evaluation loop and the rule index it owns (see the module docstring)."""

    def __init__(
        self,
        repository: AlertRepository,
        price_log: PriceLog,
        hold_lease: Callable[[str, float], Awaitable[bool]],
        clock: Clock,
        deliver: Callable[[list[AlertEvent]], Awaitable[None]],
        recover: Callable[[], Awaitable[object]],
        *,
        instance_id: str,
        claim_seconds: float = 30.0,
        lease_ttl: float = 10.0,
        batch: int = BATCH,
        read_wait: float = 1.0,
    ) -> None:
        self.repository = repository
        self.price_log = price_log
        self.hold_lease = hold_lease
        self.clock = clock
        self.deliver = deliver
        self.recover = recover
        self.instance_id = instance_id
        self.claim = timedelta(seconds=claim_seconds)
        self.lease_ttl = lease_ttl
        self.batch = batch
        self.read_wait = read_wait
        self.evaluator = AlertEvaluator()
        self.holder = False
        self.position: str | None = None  # the last log entry taken into account
        self.saved: str | None = None  # the position as stored in the database
        self._saved_at = 0.0
        self._lock = asyncio.Lock()  # one batch (or direct observation) at a time
        self._last_at: float | None = None  # append time of the last entry taken into account
        self._waiting_since: float | None = None  # append time of the oldest entry read, not yet done
        self.prices_evaluated = 0  # taken into account completely: stored, and their triggers published
        self._sending: asyncio.Queue[_Sending] = asyncio.Queue(SEND_QUEUE)
        self._unsent = 0  # batches handed to the sender and not yet through it
        self._queued_triggers = 0  # triggers stored and handed to the sender, not yet published
        self._sender: asyncio.Task[None] | None = None
        self._unstored = 0  # evaluated in the batch being built
        self.prices_invalid = 0
        self.prices_missed = 0  # gaps: the log was trimmed past the position (evaluation fell behind)
        self.rule_changes = 0
        self.triggers_fired = 0
        self.position_conflicts = 0
        self.failures = 0
        self.last_error: str | None = None

    # ───────────── holding the lease ─────────────

    async def run(self) -> None:
        """Forever: take the lease, load, then evaluate batch after batch while the lease holds (and send
        what each batch fired from a sender task of its own)."""
        self._sender = asyncio.get_running_loop().create_task(self._send(), name="alert-sender")
        try:
            await self._evaluate_forever()
        finally:
            self._sender.cancel()
            await asyncio.wait([self._sender])  # its own end (a crash, the cancel) is not this one's
            if not self._sender.cancelled():
                self._sender.exception()  # seen (it was logged, and told to whoever waited)
            self._sender = None
            self._drop_unsent(None)

    def _drop_unsent(self, failure: BaseException | None) -> None:
        """The sender stopped: what it had not sent stays stored and claimed, for the retry loop or the
        next start; whoever waited for it is let go (with the failure that ended it, if one did)."""
        while not self._sending.empty():
            batch = self._sending.get_nowait()
            if batch.done is not None and not batch.done.done():
                if failure is None:
                    batch.done.set_result(None)
                else:
                    batch.done.set_exception(failure)
        self._unsent = self._queued_triggers = 0

    async def _evaluate_forever(self) -> None:
        backoff = Backoff(0.5, maximum=10.0)  # after a failed batch, reset by a good round
        renew_every = self.lease_ttl / 3
        while True:
            try:
                held = await self.hold_lease(LEASE, self.lease_ttl)
            except BackplaneUnavailable as exc:
                held, self.last_error = False, f"lease: {exc}"
            if not held:
                self.holder = False
                await asyncio.sleep(renew_every)
                continue
            try:
                if not self.holder:  # taking over: first publish what earlier holders left unpublished
                    await self.take_over()
                renew_at = time.monotonic() + renew_every
                while time.monotonic() < renew_at:
                    await self.step(self.read_wait)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except PositionConflict:
                self.position_conflicts += 1
                log.warning("alert evaluation: another instance moved the log position; reloading")
                self.holder = False
            except Exception as exc:  # the database or the log failed: nothing of the batch was stored
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff.next()
                log.warning("alert evaluation failed (%s); reloading in %.1f s", self.last_error, delay)
                self.holder = False
                await asyncio.sleep(delay)

    async def take_over(self) -> None:
        """This instance holds the lease now: load where the last holder left off, and first publish
        what it stored but did not publish (its claims are void: it no longer holds the lease), so
        that its triggers reach their owners before the ones evaluation fires from here on."""
        await self._sent()  # what this instance itself handed to its sender goes out first
        await self.load()
        await self.recover()
        self.holder = True
        log.info("alert evaluation: this instance evaluates (%d armed rules)", len(self.evaluator))

    async def load(self) -> None:
        """The rules and the log position as stored: where the last holder left off."""
        async with self._lock:
            self._unstored = 0
            self.evaluator = AlertEvaluator(await self.repository.armed_rules())
            stored = (
                await self.repository.log_position(self.price_log.name) if self.price_log.durable else None
            )
            self.position = stored if stored is not None else await self.price_log.end()
            self.saved = stored
            self._saved_at = time.monotonic()

    # ───────────── evaluating ─────────────

    async def step(self, wait: float) -> list[AlertEvent]:
        """Read and evaluate the next batch of the log (waiting up to ``wait`` for one)."""
        read = await self.price_log.read(self.position, self.batch, wait)
        if read.missed:
            self.prices_missed += 1
            log.error(
                "alert evaluation fell behind the price log (%s): prices after %s were trimmed before "
                "they were evaluated; raise alerts.log_size",
                self.price_log.name,
                self.position,
            )
        if not read.entries:
            self._waiting_since = None  # caught up
            if self.position != self.saved and time.monotonic() - self._saved_at > IDLE_SAVE_SECONDS:
                async with self._lock:
                    await self._store({}, self.position)
            return []
        self._waiting_since = read.entries[0].at
        async with self._lock:
            fired = await self._apply(read.entries)
        self._waiting_since = None
        return fired

    async def observe(self, observation: Observation, at: datetime | None = None) -> list[AlertEvent]:
        """Take what is in the log so far into account, then evaluate one observation as if it were the
        next price (for callers that hold a price outside the log, such as tests of the rules)."""
        if not self.holder:
            await self.take_over()
        read = await self.price_log.read(self.position, self.batch, 0.0)
        async with self._lock:
            events = await self._apply(read.entries) if read.entries else []
            changes: dict[int, RuleChange] = {}
            self._evaluate(observation, at or self.clock.now(), changes)
            events += await self._store(changes, self.position)
        await self._sent()  # published (or left to the retry loop) before the caller hears of them
        return events

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
            else:
                try:
                    price = _decode_price(entry.data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.prices_invalid += 1
                else:
                    observation = Observation(
                        ticker=price.ticker,
                        price=price.price,
                        change_percent=price.change_percent,
                        volume=price.volume,
                    )
                    self._evaluate(observation, datetime.fromtimestamp(entry.at, UTC), changes)
            position = entry.id
            self._last_at = entry.at
        return fired + await self._store(changes, position)

    def _evaluate(self, observation: Observation, at: datetime, changes: dict[int, RuleChange]) -> None:
        evaluation = self.evaluator.evaluate(observation, at)
        self.evaluator.commit(evaluation, evaluation.transitions)  # stored with the batch, or reloaded
        self._unstored += 1
        for step in evaluation.transitions:
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
        self.triggers_fired += len(events)
        prices, self._unstored = self._unstored, 0
        await self._hand_over(events, prices)
        return events

    # ───────────── sending ─────────────

    async def _hand_over(self, events: list[AlertEvent], prices: int) -> None:
        """Give a stored batch to the sender (in order, behind the batches before it); without a sender
        (evaluation driven directly, as by ``observe`` before ``run``), send it here."""
        sender = self._sender
        if sender is None or sender.done():
            await self._deliver(events, prices)
        elif events or self._unsent:
            self._unsent += 1
            self._queued_triggers += len(events)
            await self._sending.put(_Sending(events, prices, None))
        else:  # nothing ahead of it and nothing to send: taken into account now
            self.prices_evaluated += prices

    async def _sent(self) -> None:
        """Until every batch handed to the sender so far is through it."""
        sender = self._sender
        if sender is None or sender.done() or not self._unsent:
            return
        done = asyncio.get_running_loop().create_future()
        self._unsent += 1
        await self._sending.put(_Sending([], 0, done))
        await done

    async def _send(self) -> None:
        """The sender: one stored batch after another, in order. A batch whose sending fails stays
        stored and claimed (the retry loop publishes it); whoever waits for it hears of the failure."""
        try:
            await self._send_forever()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the process is going down: the waiters hear why
            self._drop_unsent(exc)
            raise

    async def _send_forever(self) -> None:
        failure: Exception | None = None  # since the last waiter
        while True:
            batch = await self._sending.get()
            try:
                await self._deliver(batch.events, batch.prices)
            except Exception as exc:
                failure = exc
                self.failures += 1
                self.last_error = f"sending: {type(exc).__name__}: {exc}"
                log.exception("alert evaluation: sending %d stored triggers failed", len(batch.events))
            finally:
                self._unsent -= 1
                self._queued_triggers -= len(batch.events)
            if batch.done is not None and not batch.done.done():
                if failure is None:
                    batch.done.set_result(None)
                else:
                    batch.done.set_exception(failure)
                failure = None

    async def _deliver(self, events: list[AlertEvent], prices: int) -> None:
        try:
            if events:
                await self.deliver(events)
        finally:
            self.prices_evaluated += prices

    async def _refresh(self, rule_ids: list[int]) -> None:
        """Take the stored state of rules that changed elsewhere (or whose change a batch lost to)."""
        stored = {rule.id: rule for rule in await self.repository.rules_by_id(rule_ids)}
        for rule_id in rule_ids:
            rule: AlertRule | None = stored.get(rule_id)
            if rule is None or not rule.armed:
                self.evaluator.remove(rule_id)
            else:
                self.evaluator.upsert(rule)

    @property
    def triggers_sending(self) -> int:
        """Triggers stored and handed to the sender, not yet published."""
        return self._queued_triggers

    def tickers(self) -> set[str]:
        """Tickers with armed rules (known to the holder only; the streamer polls them cluster-wide)."""
        return self.evaluator.tickers() if self.holder else set()

    def lag(self) -> float | None:
        """Seconds the oldest price read from the log but not yet taken into account has waited since it
        was logged (0 when caught up; None on an instance that does not evaluate). Unlike the age of the
        last price, it stays 0 while no prices come (market closed) and grows while a batch is stuck."""
        if not self.holder:
            return None
        since = self._waiting_since
        return 0.0 if since is None else max(0.0, self.clock.now().timestamp() - since)

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
            "triggers_sending": self.triggers_sending,
            "prices_invalid": self.prices_invalid,
            "log_gaps": self.prices_missed,
            "rule_changes": self.rule_changes,
            "position_conflicts": self.position_conflicts,
            "failures": self.failures,
            "last_error": self.last_error,
        }
