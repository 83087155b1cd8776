"""The users' notification destinations and the delivery queue, in the database (SQLite or PostgreSQL).

Deliveries are planned from stored triggers (one row per trigger and destination, in the transaction that
marks the trigger planned: a crash plans it again, the unique key keeps one row each), claimed by one
sender at a time (``claimed_until``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and recorded attempt by
attempt, so that each is handed over once in the cluster and resumes after a crash of its sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from legend.adapters.sql import alert_rows
from legend.adapters.sql.database import Database
from legend.adapters.sql.rows import chunks, from_row, inserted_id
from legend.adapters.sql.tables import (
    alert_deliveries,
    alert_events,
    alert_rules,
    notify_email,
    notify_push,
    notify_webhooks,
    server_keys,
)
from legend.domain.notifications import (
    Channel,
    Delivery,
    DeliveryState,
    Destination,
    EmailAddress,
    PushSubscription,
    Webhook,
)

_TABLES = {"webhook": notify_webhooks, "push": notify_push, "email": notify_email}
_TYPES: dict[str, type[Webhook] | type[PushSubscription] | type[EmailAddress]] = {
    "webhook": Webhook,
    "push": PushSubscription,
    "email": EmailAddress,
}
_OPEN = ("pending", "retrying")


def _destination(channel: str, row: Row[Any]) -> Destination:
    return from_row(_TYPES[channel], row)


class SqlAlchemyNotificationRepository:
    """Destinations per user and the delivery queue (``ports.notifications.NotificationRepository``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # ───────────── destinations ─────────────

    async def add(self, channel: Channel, user_id: str, fields: dict[str, str], now: datetime) -> Destination:
        """Register a destination; one already registered with the same endpoint or address is returned."""
        table = _TABLES[channel]
        values = {**fields, "user_id": user_id, "created_at": now}
        try:
            async with self.database.write() as conn:
                destination_id = inserted_id(await conn.execute(insert(table).values(values)))
        except IntegrityError:  # the same push endpoint or address again: the one registered
            key = "endpoint" if channel == "push" else "address"
            async with self.database.read() as conn:
                row = (
                    await conn.execute(
                        select(table).where(table.c.user_id == user_id, table.c[key] == fields[key])
                    )
                ).one()
            return _destination(channel, row)
        return _TYPES[channel](id=destination_id, user_id=user_id, created_at=now, **fields)

    async def destinations(self, user_id: str) -> list[Destination]:
        found: list[Destination] = []
        async with self.database.read() as conn:
            for channel, table in _TABLES.items():
                rows = await conn.execute(
                    select(table).where(table.c.user_id == user_id).order_by(table.c.id)
                )
                found += [_destination(channel, row) for row in rows]
        return found

    async def destination(self, channel: Channel, user_id: str, destination_id: int) -> Destination | None:
        table = _TABLES[channel]
        query = select(table).where(table.c.id == destination_id, table.c.user_id == user_id)
        async with self.database.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else _destination(channel, row)

    async def remove(self, channel: Channel, user_id: str, destination_id: int) -> bool:
        """Delete a destination; its open deliveries end as ``removed``."""
        table = _TABLES[channel]
        async with self.database.write() as conn:
            gone = await conn.execute(
                delete(table).where(table.c.id == destination_id, table.c.user_id == user_id)
            )
            if gone.rowcount != 1:
                return False
            d = alert_deliveries.c
            await conn.execute(
                update(alert_deliveries)
                .where(d.channel == channel, d.destination_id == destination_id, d.state.in_(_OPEN))
                .values(state="removed", next_attempt_at=None, claimed_by=None, claimed_until=None)
            )
        return True

    # ───────────── planning and the queue ─────────────

    async def plan(self, now: datetime, limit: int) -> int:
        """Plan the deliveries of up to ``limit`` triggers not planned yet: one per destination of the
        rule's channels (``notify``; none given: every destination of the user). The number planned."""
        e, r = alert_events.c, alert_rules.c
        planned = 0
        async with self.database.read() as conn:  # idle rounds never take the write lock
            if await conn.scalar(select(e.id).where(e.planned.is_(False)).limit(1)) is None:
                return 0
        async with self.database.write() as conn:
            rows = (
                await conn.execute(
                    select(e.id, e.user_id, r.notify)
                    .select_from(alert_events.outerjoin(alert_rules, e.rule_id == r.id))
                    .where(e.planned.is_(False))
                    .order_by(e.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, of=alert_events)
                )
            ).all()
            # every destination of the batch's users, one query per channel (not one per trigger: the
            # write lock is held meanwhile, and the evaluator's commits wait on it)
            users = sorted({user_id for _, user_id, _ in rows})
            owned: dict[tuple[str, str], list[int]] = {}
            for channel, table in _TABLES.items():
                for part in chunks(users):
                    found = await conn.execute(
                        select(table.c.user_id, table.c.id)
                        .where(table.c.user_id.in_(part))
                        .order_by(table.c.id)
                    )
                    for user_id, destination_id in found:
                        owned.setdefault((channel, user_id), []).append(destination_id)
            planned_rows = [
                {
                    "event_id": event_id,
                    "user_id": user_id,
                    "channel": channel,
                    "destination_id": destination_id,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for event_id, user_id, notify in rows
                for channel in (notify.split(",") if notify else _TABLES)
                if channel in _TABLES
                for destination_id in owned.get((channel, user_id), ())
            ]
            if planned_rows:
                await conn.execute(insert(alert_deliveries), planned_rows)
            planned = len(planned_rows)
            if rows:
                await conn.execute(
                    update(alert_events).where(e.id.in_([row[0] for row in rows])).values(planned=True)
                )
        return planned

    async def claim_due(
        self, owner: str, now: datetime, until: datetime, limit: int, skip: Sequence[tuple[str, int]] = ()
    ) -> list[Delivery]:
        """Claim up to ``limit`` deliveries due now (not claimed by a live sender), oldest first, none to the
        destinations in ``skip`` (channel, id: those the caller is busy sending to)."""
        d = alert_deliveries.c
        due = and_(
            d.state.in_(_OPEN),
            d.next_attempt_at <= now,
            or_(d.claimed_until.is_(None), d.claimed_until <= now),
        )
        if skip:
            due = and_(due, tuple_(d.channel, d.destination_id).not_in(list(skip)))
        async with self.database.read() as conn:  # idle rounds never take the write lock
            if await conn.scalar(select(d.id).where(due).limit(1)) is None:
                return []
        async with self.database.write() as conn:
            ids = list(
                (
                    await conn.scalars(
                        select(d.id).where(due).order_by(d.next_attempt_at, d.id).limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )  # fmt: skip
            if not ids:
                return []
            await conn.execute(
                update(alert_deliveries)
                .where(d.id.in_(ids), due)
                .values(claimed_by=owner, claimed_until=until)
            )
            rows = (
                await conn.execute(
                    select(alert_deliveries)
                    .where(d.id.in_(ids), d.claimed_by == owner)
                    .order_by(d.next_attempt_at, d.id)
                )
            ).all()
            events = {
                row.id: alert_rows.event(row)
                for row in await conn.execute(
                    select(alert_events).where(alert_events.c.id.in_({row.event_id for row in rows}))
                )
            }
            claimed: list[Delivery] = []
            for row in rows:
                table = _TABLES[row.channel]
                found = (
                    await conn.execute(select(table).where(table.c.id == row.destination_id))
                ).one_or_none()
                claimed.append(
                    Delivery(
                        id=row.id,
                        channel=row.channel,
                        destination_id=row.destination_id,
                        attempts=row.attempts,
                        destination=None if found is None else _destination(row.channel, found),
                        payload=events[row.event_id].payload(),
                        user_id=row.user_id,
                    )
                )
        return claimed

    async def record(self, owner: str, outcomes: Sequence[tuple[int, DeliveryState]], now: datetime) -> int:
        """Store what attempts came to, in one transaction (only those ``owner`` still claims); how many."""
        if not outcomes:
            return 0
        d = alert_deliveries.c
        rows = [
            {
                "delivery_id": delivery_id,
                "owner": owner,
                "new_state": state.state,
                "next_at": state.next_attempt_at,
                "error": None if state.error is None else state.error[:500],
                "delivered": now if state.state == "delivered" else None,
                "now": now,
            }
            for delivery_id, state in outcomes
        ]
        statement = (
            update(alert_deliveries)
            .where(d.id == bindparam("delivery_id"), d.claimed_by == bindparam("owner"))
            .values(
                state=bindparam("new_state"),
                attempts=d.attempts + 1,
                next_attempt_at=bindparam("next_at"),
                last_error=bindparam("error"),
                delivered_at=func.coalesce(bindparam("delivered"), d.delivered_at),
                claimed_by=None,
                claimed_until=None,
                updated_at=bindparam("now"),
            )
        )
        async with self.database.write() as conn:
            done = await conn.execute(statement, rows)
        return int(done.rowcount)

    async def release(self, owner: str, delivery_ids: Sequence[int]) -> None:
        """Give claims back unsent (the sender has no room for them now)."""
        if not delivery_ids:
            return
        d = alert_deliveries.c
        async with self.database.write() as conn:
            await conn.execute(
                update(alert_deliveries)
                .where(d.id.in_(list(delivery_ids)), d.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None)
            )

    async def deliveries(self, event_ids: Sequence[int]) -> dict[int, list[DeliveryState]]:
        """Each trigger's deliveries and their states, by trigger id."""
        d = alert_deliveries.c
        found: dict[int, list[DeliveryState]] = {}
        async with self.database.read() as conn:
            for chunk in chunks(list(event_ids)):
                rows = await conn.execute(
                    select(alert_deliveries).where(d.event_id.in_(chunk)).order_by(d.id)
                )
                for row in rows:
                    found.setdefault(row.event_id, []).append(
                        DeliveryState(
                            channel=row.channel,
                            destination_id=row.destination_id,
                            state=row.state,
                            attempts=row.attempts,
                            next_attempt_at=row.next_attempt_at,
                            error=row.last_error,
                            delivered_at=row.delivered_at,
                        )
                    )
        return found

    # ───────────── keys ─────────────

    async def key(self, name: str, make: str, now: datetime) -> str:
        """The server key ``name``: ``make`` stored if there is none yet (the first instance's wins)."""
        k = server_keys.c
        async with self.database.write() as conn:
            stored = await conn.scalar(select(k.value).where(k.name == name))
            if stored is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(server_keys).values(name=name, value=make, created_at=now))
                    return make
                except IntegrityError:
                    stored = await conn.scalar(select(k.value).where(k.name == name))
        return str(stored if stored is not None else make)
