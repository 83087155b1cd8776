"""Where watchlists, alert rules and alert triggers are kept.

SQLAlchemy adapters implement these for SQLite (the embedded default) and PostgreSQL; one contract test
suite runs against every adapter. Every user-facing method is scoped to one ``user_id``: a rule or event
of another user is reported as absent, never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from legend.domain.alert_index import Transition
from legend.domain.alert_rules import AlertEvent, AlertRule, NewAlertEvent, RuleSpec


class RuleLimitReached(Exception):
    """The user already has the maximum number of alert rules."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"too many alert rules: at most {limit} per user")
        self.limit = limit


class PositionConflict(Exception):
    """The stored log position was not the one expected: another instance evaluated meanwhile."""


class PositionMove(msgspec.Struct, frozen=True):
    """Move the stored position of log ``name`` from ``before`` (None: none stored yet) to ``after``."""

    name: str
    before: str | None
    after: str


class RuleChange(msgspec.Struct, frozen=True):
    """What a batch of prices did to one rule: its state before the first and after the last price,
    and every trigger it fired between, in order."""

    before: AlertRule
    after: AlertRule
    events: list[NewAlertEvent]


class ChangesRecorded(msgspec.Struct, frozen=True):
    """What ``AlertRepository.record_changes`` stored: the triggers, and the rules whose stored version
    no longer matched (changed or deleted meanwhile; nothing stored for them)."""

    events: list[AlertEvent]
    conflicts: list[int]


class Recorded(msgspec.Struct, frozen=True):
    """What ``AlertRepository.record`` stored: the transitions applied, the events they created, and the
    rules whose stored version no longer matched (changed or deleted meanwhile; nothing stored for them)."""

    applied: list[Transition]
    events: list[AlertEvent]
    conflicts: list[int]


class WatchlistRepository(Protocol):
    """Each user's watchlist: a set of tickers kept in the order they were added."""

    async def tickers(self, user_id: str) -> list[str]:
        """The user's tickers, oldest first."""
        ...

    async def add(self, user_id: str, ticker: str, limit: int) -> bool | None:
        """Add a ticker: True if added, False if already there, None if the list holds ``limit`` already."""
        ...

    async def remove(self, user_id: str, ticker: str) -> bool:
        """Remove a ticker; False if it was not there."""
        ...


class AlertRepository(Protocol):
    """Alert rules with their evaluation state, and the trigger events they produce (an outbox)."""

    async def create_rule(self, user_id: str, spec: RuleSpec, now: datetime, limit: int) -> AlertRule:
        """Store a new armed rule (no side, generation 0, version 1); raises RuleLimitReached."""
        ...

    async def rule(self, user_id: str, rule_id: int) -> AlertRule | None:
        """One of the user's rules."""
        ...

    async def rules(self, user_id: str) -> list[AlertRule]:
        """All of the user's rules, oldest first."""
        ...

    async def rules_by_id(self, rule_ids: Sequence[int]) -> list[AlertRule]:
        """The rules among ``rule_ids`` that still exist, whoever owns them."""
        ...

    async def armed_rules(self) -> list[AlertRule]:
        """Every armed rule of every user: what the evaluator indexes."""
        ...

    async def update_rule(self, rule: AlertRule, expected_version: int) -> bool:
        """Store every field of ``rule`` if the stored version is still ``expected_version``."""
        ...

    async def delete_rule(self, user_id: str, rule_id: int) -> bool:
        """Delete one of the user's rules (its past events stay, without rule id); False if absent."""
        ...

    async def record(self, transitions: Sequence[Transition], owner: str, claim_until: datetime) -> Recorded:
        """In one transaction, store each transition's new rule state if the rule's stored version is
        still ``before.version``, and the event of each applied transition that fired, claimed for
        publishing by ``owner`` until ``claim_until``. An event key that exists already is never
        stored twice."""
        ...

    async def record_changes(
        self,
        changes: Sequence[RuleChange],
        owner: str,
        claim_until: datetime,
        position: PositionMove | None = None,
    ) -> ChangesRecorded:
        """In one transaction: move the log ``position`` (raising PositionConflict, and storing nothing,
        when it is not where expected), store each rule's new state if its stored version is still
        ``before.version``, and the triggers of the rules stored, claimed for publishing by ``owner``
        until ``claim_until``. A trigger key that exists already is never stored twice."""
        ...

    async def log_position(self, name: str) -> str | None:
        """The stored position of log ``name``."""
        ...

    async def claim_unpublished(
        self, owner: str, now: datetime, until: datetime, limit: int, takeover: bool = False
    ) -> list[AlertEvent]:
        """Claim up to ``limit`` unpublished events for ``owner`` until ``until``, oldest first: those
        unclaimed, claimed by ``owner``, or whose claim expired by ``now`` (any claim with ``takeover``)."""
        ...

    async def mark_published(self, event_ids: Sequence[int], at: datetime) -> None:
        """Record that the events were published."""
        ...

    async def events(self, user_id: str, limit: int, before: int | None = None) -> list[AlertEvent]:
        """The user's events, newest first, with ``id < before`` when given."""
        ...
