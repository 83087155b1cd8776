"""The alerting service: user rules, their evaluation on every price, and exactly-once trigger delivery.

On each price update (``Publisher.price_listeners``) the evaluator finds the rules that change side. Their
new states and the triggers of the rules that fire are stored in one transaction, each trigger under the
unique key ``{rule_id}:{generation}`` and guarded by the rule's version, so a crossing is stored at most
once even with several instances. Only then is it published, as the seed's ``alert_trigger``, on the
owner's private ``alerts`` stream, and marked published. Triggers stored but not marked (a crash, the
backplane down) are claimed and published by the retry loop and at start-up; before publishing one again,
the owner's stream history is searched for its ``alert_id``, so a trigger that went out just before a crash
is not sent twice while the backplane still remembers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from datetime import timedelta

import msgspec

from legend.domain.alerts import (
    AlertEvaluator,
    AlertEvent,
    AlertRule,
    Observation,
    RulePatch,
    RuleSpec,
    apply_patch,
    check_rule,
)
from legend.domain.channels import private_stream
from legend.domain.inputs import AlertInput
from legend.domain.messages import PriceUpdate
from legend.domain.publisher import Publisher
from legend.ports.backplane import Backplane, BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.repositories import AlertRepository

log = logging.getLogger("legend.alerts")

BATCH = 100  # triggers claimed per round of publishing
UPDATE_ATTEMPTS = 5  # a user's update retried when an evaluation changed the rule meanwhile


class RuleConflict(Exception):
    """The rule kept changing while it was being updated; the caller may try again."""


class AlertingService:
    """Rules per user, evaluated on every published price; triggers stored first, then published once."""

    def __init__(
        self,
        repository: AlertRepository,
        publisher: Publisher,
        backplane: Backplane,
        clock: Clock,
        *,
        instance_id: str,
        max_rules_per_user: int = 200,
        retry_interval: float = 5.0,
        claim_seconds: float = 30.0,
        reload_interval: float = 0.0,
        single_instance: bool = True,
        max_queued_prices: int = 10_000,
    ) -> None:
        self.repository = repository
        self.publisher = publisher
        self.backplane = backplane
        self.clock = clock
        self.instance_id = instance_id
        self.max_rules_per_user = max_rules_per_user
        self.retry_interval = retry_interval
        self.claim = timedelta(seconds=claim_seconds)
        self.reload_interval = reload_interval
        # With one instance (memory backplane) nobody else can be publishing a stored trigger: start-up
        # recovery takes over every claim at once instead of waiting for them to expire.
        self.single_instance = single_instance
        self.evaluator = AlertEvaluator()
        self.started = False
        self.triggers_fired = 0
        self.triggers_published = 0
        self.publish_failures = 0
        self._lock = asyncio.Lock()  # evaluations and rule changes, one at a time
        self._deliver_lock = asyncio.Lock()  # publishing, one round at a time
        self._fresh: set[int] = set()  # stored by this process and not yet tried: no history check needed
        self._backlog = False  # a publish failed: the retry loop has work
        self._task: asyncio.Task[None] | None = None
        # Prices wait here for evaluation, in order, so that the streamer never waits on the database.
        # Bounded: during a long database outage the oldest are dropped (counted) rather than memory grown.
        self._queue: deque[Observation] = deque(maxlen=max_queued_prices)
        self._queued = asyncio.Event()
        self._evaluating: asyncio.Task[None] | None = None
        self.prices_dropped = 0
        self.prices_evaluated = 0

    # ───────────── life cycle ─────────────

    async def start(self) -> None:
        """Load the armed rules, publish what a previous run left unpublished, start the retry loop."""
        if self.started:
            return
        self.evaluator = AlertEvaluator(await self.repository.armed_rules())
        self.started = True
        log.info("alerting: %d armed rules loaded", len(self.evaluator))
        self._backlog = True
        try:
            await self.deliver_pending(takeover=self.single_instance)
        except Exception:
            log.exception("alerting: recovery of unpublished triggers failed; the retry loop will try again")
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._background(), name="alert-delivery")
        self._evaluating = loop.create_task(self._evaluate_queued(), name="alert-evaluation")

    async def stop(self) -> None:
        self.started = False
        for task in (self._task, self._evaluating):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._evaluating = None

    async def _evaluate_queued(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                observation = self._queue.popleft()
                try:
                    await self.observe(observation)
                except Exception:
                    log.exception("alerting: evaluating %s failed", observation.ticker)
                self.prices_evaluated += 1

    async def _background(self) -> None:
        since_reload = 0.0
        while True:
            await asyncio.sleep(self.retry_interval)
            since_reload += self.retry_interval
            try:
                if not self.single_instance and self.reload_interval and since_reload >= self.reload_interval:
                    since_reload = 0.0
                    await self.reload()
                if self._backlog or not self.single_instance:
                    await self.deliver_pending()
            except Exception:
                log.exception("alerting: background round failed")

    async def reload(self) -> None:
        """Re-read every armed rule (rules changed by other instances); each ticker's next price checks
        its rules against their stored sides."""
        async with self._lock:
            self.evaluator = AlertEvaluator(await self.repository.armed_rules())

    def tickers(self) -> set[str]:
        """Tickers with armed rules: the streamer should poll them even when nobody watches them live."""
        return self.evaluator.tickers()

    # ───────────── evaluation ─────────────

    async def on_price(self, update: PriceUpdate) -> None:
        """The ``Publisher.price_listeners`` hook: queue the price and return at once; the evaluation
        (and any database write it needs) runs in its own task, in order."""
        if not self.started:
            return
        if len(self._queue) == self._queue.maxlen:
            self.prices_dropped += 1
        self._queue.append(
            Observation(
                ticker=update.ticker,
                price=update.price,
                change_percent=update.change_percent,
                volume=float(update.volume),
            )
        )
        self._queued.set()

    async def observe(self, observation: Observation) -> list[AlertEvent]:
        """Evaluate one price update; returns the triggers it stored (published before returning, unless
        the backplane failed: then the retry loop publishes them)."""
        if not self.started:
            return []
        async with self._lock:
            evaluation = self.evaluator.evaluate(observation, self.clock.now())
            if not evaluation.transitions:
                self.evaluator.commit(evaluation)
                return []
            recorded = await self.repository.record(
                evaluation.transitions, self.instance_id, evaluation.at + self.claim
            )
            self.evaluator.commit(evaluation, recorded.applied)
            if recorded.conflicts:
                await self._refresh(recorded.conflicts)
            self._fresh.update(event.id for event in recorded.events)
            self.triggers_fired += len(recorded.events)
        if recorded.events:
            try:
                await self.deliver_pending()
            except Exception:  # stored, so not lost: the retry loop publishes it
                log.exception("alerting: publishing new triggers failed")
                self._backlog = True
        return recorded.events

    async def _refresh(self, rule_ids: Sequence[int]) -> None:
        """Take the stored state of rules that changed elsewhere."""
        stored = {rule.id: rule for rule in await self.repository.rules_by_id(rule_ids)}
        for rule_id in rule_ids:
            rule = stored.get(rule_id)
            if rule is None:
                self.evaluator.remove(rule_id)
            else:
                self.evaluator.upsert(rule)

    # ───────────── delivery ─────────────

    async def deliver_pending(self, *, takeover: bool = False) -> int:
        """Publish stored, unpublished triggers (oldest first) and mark them; returns how many went out.
        Stops at the first backplane failure, leaving the rest for the next round."""
        delivered = 0
        async with self._deliver_lock:
            self._backlog = True  # until a round ends with nothing left
            while True:
                now = self.clock.now()
                events = await self.repository.claim_unpublished(
                    self.instance_id, now, now + self.claim, BATCH, takeover=takeover
                )
                failed = False
                for event in events:
                    try:
                        if event.id in self._fresh or not await self._in_history(event):
                            await self.publisher.alert(_alert_input(event))
                    except BackplaneUnavailable as exc:
                        log.warning("alerting: trigger %s not published yet: %s", event.key, exc)
                        failed = True
                    except Exception:  # this one trigger is broken: it must not hold back the others
                        log.exception("alerting: trigger %s not published", event.key)
                        self._fresh.discard(event.id)
                        self.publish_failures += 1
                        continue
                    # Tried once: it may have gone out even if marking it fails, or even if the backplane
                    # reported an error; any later attempt looks for it in the stream's history first.
                    self._fresh.discard(event.id)
                    if failed:
                        self.publish_failures += 1
                        break
                    # Marked one by one, right away: a claim that runs out mid-batch cannot make another
                    # instance publish what this one already sent.
                    await self.repository.mark_published([event.id], self.clock.now())
                    delivered += 1
                    self.triggers_published += 1
                if failed:
                    return delivered
                if len(events) < BATCH:
                    self._backlog = False
                    return delivered

    async def _in_history(self, event: AlertEvent) -> bool:
        """Whether the owner's stream already carries this trigger (published before a crash)."""
        replay = await self.backplane.replay(private_stream("alerts", event.user_id), None)
        needle = '"alert_id":' + msgspec.json.encode(event.key).decode()
        return any(needle in envelope.text for envelope in replay.envelopes)

    # ───────────── rules ─────────────

    async def create_rule(self, user_id: str, spec: RuleSpec) -> AlertRule:
        """Validate and store a new armed rule; raises RuleInvalid or RuleLimitReached."""
        spec = check_rule(spec)
        async with self._lock:
            rule = await self.repository.create_rule(user_id, spec, self.clock.now(), self.max_rules_per_user)
            self.evaluator.upsert(rule)
        return rule

    async def rules(self, user_id: str) -> list[AlertRule]:
        return await self.repository.rules(user_id)

    async def rule(self, user_id: str, rule_id: int) -> AlertRule | None:
        return await self.repository.rule(user_id, rule_id)

    async def update_rule(self, user_id: str, rule_id: int, patch: RulePatch) -> AlertRule | None:
        """Apply a partial update; None if the user has no such rule; raises RuleInvalid."""
        for _ in range(UPDATE_ATTEMPTS):
            async with self._lock:
                current = await self.repository.rule(user_id, rule_id)
                if current is None:
                    return None
                updated = apply_patch(current, patch, self.clock.now())
                if updated is current:
                    return current
                if await self.repository.update_rule(updated, expected_version=current.version):
                    if updated.armed:
                        self.evaluator.upsert(updated)
                    else:
                        self.evaluator.remove(updated.id)
                    return updated
        raise RuleConflict(f"rule {rule_id} kept changing; try again")

    async def delete_rule(self, user_id: str, rule_id: int) -> bool:
        async with self._lock:
            deleted = await self.repository.delete_rule(user_id, rule_id)
            if deleted:
                self.evaluator.remove(rule_id)
        return deleted

    async def events(self, user_id: str, limit: int, before: int | None = None) -> list[AlertEvent]:
        """The user's triggers, newest first."""
        return await self.repository.events(user_id, limit, before)

    def status(self) -> dict[str, object]:
        return {
            "armed_rules": len(self.evaluator),
            "triggers_fired": self.triggers_fired,
            "triggers_published": self.triggers_published,
            "publish_failures": self.publish_failures,
            "backlog": self._backlog,
            "prices_queued": len(self._queue),
            "prices_dropped": self.prices_dropped,
            "prices_evaluated": self.prices_evaluated,
        }


def _alert_input(event: AlertEvent) -> AlertInput:
    return AlertInput(
        ticker=event.ticker,
        alert_type=event.alert_type,
        trigger_price=event.trigger_price,
        current_price=event.price,
        message=event.message,
        user_id=event.user_id,
        alert_id=event.key,
        timestamp=event.triggered_at,
    )
