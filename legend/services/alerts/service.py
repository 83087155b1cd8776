"""The alerting service: user rules, their evaluation on every price, and exactly-once trigger delivery.

Every price the cluster publishes enters the price log (``ports.price_log``) as it is published. One
instance at a time reads the log and evaluates each price against the rules (``alerts.evaluation``); a
crossing is stored, with the rule's new state and the log position, in one transaction, under the
unique key ``{rule_id}:{generation}``. Only then is it published, as the specification's
``alert_trigger``, on the owner's private ``alerts`` stream, and marked published. The publish is
idempotent (``once``): a trigger stored but not marked (a crash, the backplane down) is claimed and
published again by the retry loop or at start-up, and the backplane refuses a second copy of one that
went out before the crash. Rule changes through any instance enter the price log too, so evaluation
sees them between the right two prices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import msgspec

from legend.domain.alert_checks import apply_patch, check_rule
from legend.domain.alert_index import PausedBy, RuleIndex, RuleState, rule_state
from legend.domain.alert_rules import AlertEvent, AlertRule, RulePatch, RuleSpec
from legend.domain.bar_alignment import SessionLookup
from legend.domain.inputs import AlertInput
from legend.domain.prices import LoggedPrice
from legend.domain.stream_name import private_stream
from legend.ports.backplane import AlreadyPublished, Backplane, BackplaneUnavailable
from legend.ports.bars import BarStore
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership
from legend.ports.price_log import PriceLog
from legend.ports.repositories import AlertRepository
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.services.alerts.evaluation import LEASE, AlertEvaluation
from legend.services.alerts.preview import Preview, preview
from legend.services.streaming.publisher import Publisher

log = logging.getLogger("legend.alerts")

BATCH = 500  # triggers claimed, or published, per round trip
UPDATE_ATTEMPTS = 5  # a user's update retried when an evaluation changed the rule meanwhile


class RuleConflict(Exception):
    """The rule kept changing while it was being updated; the caller may try again."""


class AlertingService:
    """Rules per user; every price evaluated once in the cluster (``AlertEvaluation``); triggers stored
    first, then published once."""

    def __init__(
        self,
        repository: AlertRepository,
        publisher: Publisher,
        backplane: Backplane,
        clock: Clock,
        *,
        price_log: PriceLog,
        cluster: ClusterMembership,
        instance_id: str,
        max_rules_per_user: int = 200,
        retry_interval: float = 5.0,
        claim_seconds: float = 30.0,
        reload_interval: float = 0.0,
        single_instance: bool = True,
        lease_ttl: float = 10.0,
        supervisor: TaskSupervisor | None = None,
        zone: str = "UTC",
        session_on: SessionLookup | None = None,
        bars: BarStore | None = None,
    ) -> None:
        self.repository = repository
        self.publisher = publisher
        self.backplane = backplane
        self.price_log = price_log
        self.cluster = cluster  # the ``alerts`` lease: one evaluator in the cluster
        self.clock = clock
        self.instance_id = instance_id
        self.max_rules_per_user = max_rules_per_user
        self.retry_interval = retry_interval
        self.claim = timedelta(seconds=claim_seconds)
        self.reload_interval = reload_interval
        # With one instance (memory backplane) nobody else can be publishing a stored trigger: start-up
        # recovery takes over every claim at once instead of waiting for them to expire.
        self.single_instance = single_instance
        self.evaluation = AlertEvaluation(
            repository,
            price_log,
            cluster.hold_lease,
            clock,
            self._publish_fresh,
            self._recover,
            instance_id=instance_id,
            claim_seconds=claim_seconds,
            lease_ttl=lease_ttl,
            zone=zone,
            session_on=session_on,
            bars=bars,
            release_lease=cluster.release_lease,
        )
        self.bars = bars  # stored bars: previews (None: bars are not kept)
        self.started = False
        self.triggers_published = 0
        self.publish_failures = 0
        self._deliver_lock = asyncio.Lock()  # publishing, one round at a time
        self._backlog = False  # a publish failed: the retry loop has work
        self._unlogged: set[int] = set()  # rule changes whose notice could not enter the price log yet
        self.supervisor = supervisor or TaskSupervisor()  # runs the delivery and evaluation loops
        self._tasks: list[Supervised] = []

    async def _recover(self) -> int:
        """On taking over evaluation: publish what earlier holders stored but did not publish. Their
        claims are void when the lease is the cluster's own (a durable log comes with Redis leases:
        holding it means the last holder lost it) or when this process is alone."""
        return await self.deliver_pending(takeover=self.single_instance or self.price_log.durable)

    async def preview(self, spec: RuleSpec, days: int) -> Preview | None:
        """Where ``spec`` would have fired over the stored bars of the last ``days``; None when bars are not
        kept (``[bars] enabled = false`` or no database); raises RuleInvalid and ValueError."""
        if self.bars is None:
            return None
        evaluation = self.evaluation
        return await preview(spec, days, self.bars, self.clock.now(), evaluation.zone, evaluation.session_on)

    def state(self, rule: AlertRule) -> tuple[RuleState, PausedBy | None]:
        """What ``rule`` is doing now: armed, paused (and why), fired or expired. A halt is known on the
        instance that evaluates (it reads market status from the price log); elsewhere only sessions."""
        now = self.clock.now()
        evaluation = self.evaluation
        return rule_state(rule, now, evaluation.phase(now), evaluation.halted)

    @property
    def evaluator(self) -> RuleIndex:
        """The rule index (complete on the instance that evaluates)."""
        return self.evaluation.evaluator

    @property
    def triggers_fired(self) -> int:
        return self.evaluation.triggers_fired

    # ───────────── life cycle ─────────────

    async def start(self) -> None:
        """Take over evaluation when free (loading the rules and the log position, and publishing what a
        previous run left unpublished), then start the evaluation and retry loops."""
        if self.started:
            return
        self.started = True
        self._backlog = True
        try:
            if await self.cluster.hold_lease(LEASE, self.evaluation.lease_ttl):
                await self.evaluation.take_over()  # publishes what a previous run left unpublished
        except BackplaneUnavailable as exc:
            log.warning("alerting: evaluation not started yet: %s", exc)
        except Exception:
            log.exception("alerting: taking over evaluation failed; the evaluation loop will try again")
        self._tasks = [
            self.supervisor.start("alert-delivery", self._background),
            self.supervisor.start("alert-evaluation", self.evaluation.run),
        ]

    async def stop(self) -> None:
        self.started = False
        tasks, self._tasks = self._tasks, []
        await self.supervisor.stop_tasks(tasks)

    async def _background(self) -> None:
        since_reload = 0.0
        while True:
            await asyncio.sleep(self.retry_interval)
            since_reload += self.retry_interval
            try:
                if self._unlogged:
                    await self._log_rule_changes()
                if self.reload_interval and since_reload >= self.reload_interval and self.evaluation.holder:
                    since_reload = 0.0
                    await self.reload()
                if self._backlog or not self.single_instance:
                    await self.deliver_pending()
            except Exception:
                log.exception("alerting: background round failed")

    async def reload(self) -> None:
        """Re-read every armed rule and the log position (the backstop for a rule change whose notice
        never reached the price log)."""
        await self.evaluation.load()

    def tickers(self) -> set[str]:
        """Tickers with armed rules: the quote poller should poll them even when nobody watches them live."""
        return self.evaluation.tickers()

    # ───────────── evaluation ─────────────

    async def observe(self, observation: LoggedPrice) -> list[AlertEvent]:
        """Evaluate one price update now (after what the price log holds so far); returns the triggers
        it stored (published before returning, unless the backplane failed: then the retry loop does)."""
        if not self.started:
            return []
        return await self.evaluation.observe(observation)

    # ───────────── delivery ─────────────

    async def _publish_fresh(self, events: list[AlertEvent]) -> None:
        """Publish triggers evaluation just stored (claimed by this instance), ``BATCH`` per round trip,
        in order, then mark them in one transaction. It holds the delivery lock, so a retry round, which
        also takes this instance's own claims (those whose publish failed), never takes these while they
        are on their way out and publishes them a second time."""
        published: list[int] = []
        async with self._deliver_lock:
            try:
                for start in range(0, len(events), BATCH):
                    chunk = events[start : start + BATCH]
                    await self.publisher.alerts_once([_alert_input(event) for event in chunk])
                    published += [event.id for event in chunk]
            except BackplaneUnavailable as exc:
                log.warning("alerting: %d triggers not published yet: %s", len(events) - len(published), exc)
                self.publish_failures += 1
                self._backlog = True  # stored and claimed: the retry loop publishes them, at most once
            if published:
                await self._mark(published)

    async def _publish(self, event: AlertEvent) -> None:
        """Publish one trigger at most once: a retry of one that went out before a crash is refused by
        the backplane (within ``alerts.dedupe_seconds``); older ones are looked for in the stream."""
        with contextlib.suppress(AlreadyPublished):
            await self.publisher.alert(_alert_input(event), once=True)

    async def _mark(self, event_ids: list[int]) -> None:
        try:
            await self.repository.mark_published(event_ids, self.clock.now())
            self.triggers_published += len(event_ids)
        except Exception:  # published, and a retry is refused by the backplane: marked next round
            log.exception("alerting: marking %d triggers published failed", len(event_ids))
            self._backlog = True

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
                done: list[int] = []
                failed = False
                for event in events:
                    try:
                        if not await self._in_history(event):
                            await self._publish(event)
                    except BackplaneUnavailable as exc:
                        log.warning("alerting: trigger %s not published yet: %s", event.key, exc)
                        failed = True
                        break
                    except Exception:  # this one trigger is broken: it must not hold back the others
                        log.exception("alerting: trigger %s not published", event.key)
                        self.publish_failures += 1
                        continue
                    done.append(event.id)
                if done:
                    await self._mark(done)
                    delivered += len(done)
                if failed:
                    self.publish_failures += 1
                    return delivered
                if len(events) < BATCH:
                    self._backlog = False
                    return delivered

    async def _in_history(self, event: AlertEvent) -> bool:
        """Whether the owner's stream already carries this trigger (published long before a crash)."""
        replay = await self.backplane.replay(private_stream("alerts", event.user_id), None)
        needle = '"alert_id":' + msgspec.json.encode(event.key).decode()
        return any(needle in envelope.text for envelope in replay.envelopes)

    # ───────────── rules ─────────────

    async def _logged(self, rule_id: int) -> None:
        """Tell the evaluating instance (through the price log) that a rule changed."""
        self._unlogged.add(rule_id)
        try:
            await self._log_rule_changes()
        except BackplaneUnavailable as exc:
            log.warning(
                "alerting: rule %d changed; evaluation learns of it once the log is back: %s", rule_id, exc
            )

    async def _log_rule_changes(self) -> None:
        for rule_id in sorted(self._unlogged):
            await self.price_log.note_rule_change(rule_id)
            self._unlogged.discard(rule_id)

    async def create_rule(self, user_id: str, spec: RuleSpec) -> AlertRule:
        """Validate and store a new armed rule; raises RuleInvalid or RuleLimitReached."""
        spec = check_rule(spec, self.clock.now())
        rule = await self.repository.create_rule(user_id, spec, self.clock.now(), self.max_rules_per_user)
        await self._logged(rule.id)
        return rule

    async def rules(self, user_id: str) -> list[AlertRule]:
        return await self.repository.rules(user_id)

    async def rule(self, user_id: str, rule_id: int) -> AlertRule | None:
        return await self.repository.rule(user_id, rule_id)

    async def update_rule(self, user_id: str, rule_id: int, patch: RulePatch) -> AlertRule | None:
        """Apply a partial update; None if the user has no such rule; raises RuleInvalid."""
        for _ in range(UPDATE_ATTEMPTS):
            current = await self.repository.rule(user_id, rule_id)
            if current is None:
                return None
            updated = apply_patch(current, patch, self.clock.now())
            if updated is current:
                return current
            if await self.repository.update_rule(updated, expected_version=current.version):
                await self._logged(rule_id)
                return updated
        raise RuleConflict(f"rule {rule_id} kept changing; try again")

    async def delete_rule(self, user_id: str, rule_id: int) -> bool:
        deleted = await self.repository.delete_rule(user_id, rule_id)
        if deleted:
            await self._logged(rule_id)
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
            "rule_changes_unlogged": len(self._unlogged),
            "prices_evaluated": self.evaluation.prices_evaluated,
            "prices_dropped": self.evaluation.log_gaps,
            "evaluation": self.evaluation.status(),
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
