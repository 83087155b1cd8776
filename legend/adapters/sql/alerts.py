"""The alert repository over SQLAlchemy (Core statements over ``Database``): rules with their state, evaluation
batches, and the trigger outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy import (
    Boolean,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from legend.adapters.sql import alert_rows
from legend.adapters.sql.database import Database
from legend.adapters.sql.log_positions import move_position, stored_position
from legend.adapters.sql.rows import chunks, inserted_id
from legend.adapters.sql.tables import (
    UtcDateTime,
    alert_events,
    alert_rules,
)
from legend.domain.alert_index import Transition
from legend.domain.alert_rules import (
    AlertEvent,
    AlertRule,
    NewAlertEvent,
    RuleSpec,
    new_rule,
)
from legend.ports.repositories import (
    ChangesRecorded,
    PositionMove,
    Recorded,
    RuleChange,
    RuleLimitReached,
)


class SqlAlchemyAlertRepository:
    """AlertRepository over SQLAlchemy: rules with their state, and the trigger outbox."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # ───────────── rules ─────────────

    async def create_rule(self, user_id: str, spec: RuleSpec, now: datetime, limit: int) -> AlertRule:
        async with self.database.write(lock=f"alert_rules:{user_id}") as conn:
            count = await conn.scalar(
                select(func.count()).select_from(alert_rules).where(alert_rules.c.user_id == user_id)
            )
            if (count or 0) >= limit:
                raise RuleLimitReached(limit)
            rule = new_rule(spec, user_id, now)
            values = {**alert_rows.rule_values(rule), "user_id": user_id, "created_at": now}
            result = await conn.execute(insert(alert_rules).values(values))
            rule_id = inserted_id(result)
        return msgspec.structs.replace(rule, id=rule_id)

    async def rule(self, user_id: str, rule_id: int) -> AlertRule | None:
        query = select(alert_rules).where(alert_rules.c.id == rule_id, alert_rules.c.user_id == user_id)
        async with self.database.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else alert_rows.rule(row)

    async def rules(self, user_id: str) -> list[AlertRule]:
        query = select(alert_rules).where(alert_rules.c.user_id == user_id).order_by(alert_rules.c.id)
        async with self.database.read() as conn:
            return [alert_rows.rule(row) for row in await conn.execute(query)]

    async def rules_by_id(self, rule_ids: Sequence[int]) -> list[AlertRule]:
        found: list[AlertRule] = []
        async with self.database.read() as conn:
            for chunk in chunks(sorted(set(rule_ids))):
                query = select(alert_rules).where(alert_rules.c.id.in_(chunk)).order_by(alert_rules.c.id)
                found.extend(alert_rows.rule(row) for row in await conn.execute(query))
        return found

    async def armed_rules(self) -> list[AlertRule]:
        query = select(alert_rules).where(alert_rules.c.armed.is_(True)).order_by(alert_rules.c.id)
        async with self.database.read() as conn:
            return [alert_rows.rule(row) for row in await conn.execute(query)]

    async def update_rule(self, rule: AlertRule, expected_version: int) -> bool:
        statement = (
            update(alert_rules)
            .where(
                alert_rules.c.id == rule.id,
                alert_rules.c.user_id == rule.user_id,
                alert_rules.c.version == expected_version,
            )
            .values(alert_rows.rule_values(rule))
        )
        async with self.database.write() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def delete_rule(self, user_id: str, rule_id: int) -> bool:
        statement = delete(alert_rules).where(alert_rules.c.id == rule_id, alert_rules.c.user_id == user_id)
        async with self.database.write() as conn:
            return (await conn.execute(statement)).rowcount == 1

    # ───────────── evaluation outcomes ─────────────

    async def record(self, transitions: Sequence[Transition], owner: str, claim_until: datetime) -> Recorded:
        # side-only changes in bulk; a trigger or an expiry (armed, disarmed) rule by rule
        quiet = [t for t in transitions if t.event is None and t.after.armed is t.before.armed]
        firing = [t for t in transitions if t.event is not None or t.after.armed is not t.before.armed]
        applied: list[Transition] = []
        conflicts: list[int] = []
        events: list[AlertEvent] = []
        async with self.database.write() as conn:
            ok, failed = await self._side_changes(conn, quiet)
            applied += ok
            conflicts += failed
            for change in firing:
                if not await self._guarded_update(conn, change):
                    conflicts.append(change.before.id)
                    continue
                applied.append(change)
                if change.event is None:
                    continue
                stored = await self._insert_event(conn, change.event, owner, claim_until)
                if stored is not None:
                    events.append(stored)
        return Recorded(applied=applied, events=events, conflicts=conflicts)

    async def _guarded_update(self, conn: AsyncConnection, change: Transition) -> bool:
        statement = (
            update(alert_rules)
            .where(alert_rules.c.id == change.before.id, alert_rules.c.version == change.before.version)
            .values(alert_rows.state_values(change.after))
        )
        return (await conn.execute(statement)).rowcount == 1

    async def _side_changes(
        self, conn: AsyncConnection, changes: Sequence[Transition]
    ) -> tuple[list[Transition], list[int]]:
        """Side-only changes (no trigger), in one statement per side and chunk; if any rule's version moved
        meanwhile, that chunk is redone row by row to learn which."""
        applied: list[Transition] = []
        conflicts: list[int] = []
        for side in (True, False):
            group = [c for c in changes if c.after.side is side]
            for chunk in chunks(group):
                pairs = [(c.before.id, c.before.version) for c in chunk]
                statement = (
                    update(alert_rules)
                    .where(tuple_(alert_rules.c.id, alert_rules.c.version).in_(pairs))
                    .values(side=side, version=alert_rules.c.version + 1)
                )
                async with conn.begin_nested() as savepoint:
                    if (await conn.execute(statement)).rowcount == len(chunk):
                        applied.extend(chunk)
                        continue
                    await savepoint.rollback()
                for change in chunk:
                    if await self._guarded_update(conn, change):
                        applied.append(change)
                    else:
                        conflicts.append(change.before.id)
        return applied, conflicts

    async def _insert_event(
        self, conn: AsyncConnection, event: NewAlertEvent, owner: str, claim_until: datetime
    ) -> AlertEvent | None:
        key = event.key
        exists = await conn.scalar(select(alert_events.c.id).where(alert_events.c.alert_key == key))
        if exists is not None:  # the crossing is stored already: never twice
            return None
        result = await conn.execute(
            insert(alert_events).values(alert_rows.event_values(event, owner, claim_until))
        )
        return event.stored(inserted_id(result))

    # ───────────── evaluation batches ─────────────

    async def record_changes(
        self,
        changes: Sequence[RuleChange],
        owner: str,
        claim_until: datetime,
        position: PositionMove | None = None,
    ) -> ChangesRecorded:
        events: list[AlertEvent] = []
        conflicts: list[RuleChange] = []
        async with self.database.write() as conn:
            if position is not None:
                await move_position(conn, position)
            applied: list[RuleChange] = []
            for chunk in chunks(list(changes)):
                stored = await self._store_states(conn, chunk)
                for change in chunk:
                    (applied if change.before.id in stored else conflicts).append(change)
            fired = [event for change in applied for event in change.events]
            for batch in chunks(fired):
                events += await self._insert_new_events(conn, batch, owner, claim_until)
        return ChangesRecorded(events=events, conflicts=[c.before.id for c in conflicts])

    async def _store_states(self, conn: AsyncConnection, chunk: Sequence[RuleChange]) -> set[int]:
        """Each rule's new state, guarded by its version; the ids stored. PostgreSQL: one UPDATE … FROM
        (VALUES …) for the chunk (a hash join). SQLite, whose planner would scan the VALUES for every rule:
        one primary-key UPDATE per rule in a single executemany, and only when the total says some
        version moved, a read of which ones did."""
        params = [
            {
                "rule_id": c.before.id,
                "expected": c.before.version,
                "version": c.after.version,
                "armed": c.after.armed,
                "disarmed": None if c.after.disarmed is None else c.after.disarmed.value,
                "side": c.after.side,
                "generation": c.after.generation,
                "last_triggered_at": c.after.last_triggered_at,
            }
            for c in chunk
        ]
        fields = ("version", "armed", "disarmed", "side", "generation", "last_triggered_at")
        if self.database.backend != "postgresql":
            statement = (
                update(alert_rules)
                .where(
                    alert_rules.c.id == bindparam("rule_id"), alert_rules.c.version == bindparam("expected")
                )
                .values({f: bindparam(f) for f in fields})
            )
            result = await conn.execute(statement, params)
            if result.rowcount == len(params):
                return {c.before.id for c in chunk}
            after = {c.before.id: c.after.version for c in chunk}
            stored = await conn.execute(
                select(alert_rules.c.id, alert_rules.c.version).where(alert_rules.c.id.in_(list(after)))
            )
            return {rule_id for rule_id, version in stored if after[rule_id] == version}
        rows = (
            values(
                column("rule_id", Integer),
                column("expected", Integer),
                column("version", Integer),
                column("armed", Boolean),
                column("disarmed", String),
                column("side", Boolean),
                column("generation", Integer),
                column("last_triggered_at", UtcDateTime()),
                name="changes",
            )
            .data([tuple(p.values()) for p in params])
            .cte("changes")
        )
        # a column of NULLs only would be taken as text: every value is cast to its column's type
        new = {f: cast(rows.c[f], alert_rules.c[f].type) for f in fields}
        statement = (
            update(alert_rules)
            .where(alert_rules.c.id == rows.c.rule_id, alert_rules.c.version == rows.c.expected)
            .values(new)
            .returning(alert_rules.c.id)
        )
        return {int(rule_id) for rule_id in (await conn.scalars(statement)).all()}

    async def _insert_new_events(
        self, conn: AsyncConnection, events: Sequence[NewAlertEvent], owner: str, claim_until: datetime
    ) -> list[AlertEvent]:
        """Insert the events whose key is new (one statement); the stored ones, in the given order."""
        dialect = postgresql if self.database.backend == "postgresql" else sqlite
        statement = (
            dialect.insert(alert_events)
            .on_conflict_do_nothing(index_elements=["alert_key"])
            .returning(alert_events.c.id, alert_events.c.alert_key)
        )
        rows = await conn.execute(statement, [alert_rows.event_values(e, owner, claim_until) for e in events])
        ids = {key: int(event_id) for event_id, key in rows.all()}
        return [event.stored(ids[event.key]) for event in events if event.key in ids]

    async def log_position(self, name: str) -> str | None:
        async with self.database.read() as conn:
            return await stored_position(conn, name)

    # ───────────── the outbox ─────────────

    async def claim_unpublished(
        self, owner: str, now: datetime, until: datetime, limit: int, takeover: bool = False
    ) -> list[AlertEvent]:
        c = alert_events.c
        claimable: ColumnElement[bool] = c.published_at.is_(None)
        if not takeover:
            claimable = and_(
                claimable, or_(c.claimed_until.is_(None), c.claimed_until <= now, c.claimed_by == owner)
            )
        async with self.database.write() as conn:
            ids = list(
                (
                    await conn.scalars(
                        select(c.id)
                        .where(claimable)
                        .order_by(c.id)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            if not ids:
                return []
            await conn.execute(
                update(alert_events)
                .where(c.id.in_(ids), claimable)
                .values(claimed_by=owner, claimed_until=until)
            )
            rows = await conn.execute(
                select(alert_events)
                .where(c.id.in_(ids), c.claimed_by == owner, c.published_at.is_(None))
                .order_by(c.id)
            )
            return [alert_rows.event(row) for row in rows]

    async def mark_published(self, event_ids: Sequence[int], at: datetime) -> None:
        if not event_ids:
            return
        async with self.database.write() as conn:
            for chunk in chunks(list(event_ids)):
                await conn.execute(
                    update(alert_events)
                    .where(alert_events.c.id.in_(chunk))
                    .values(published_at=at, claimed_by=None, claimed_until=None)
                )

    async def events(self, user_id: str, limit: int, before: int | None = None) -> list[AlertEvent]:
        query = select(alert_events).where(alert_events.c.user_id == user_id)
        if before is not None:
            query = query.where(alert_events.c.id < before)
        query = query.order_by(alert_events.c.id.desc()).limit(limit)
        async with self.database.read() as conn:
            return [alert_rows.event(row) for row in await conn.execute(query)]
