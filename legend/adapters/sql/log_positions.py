"""How far a consumer has read an ordered log, stored in the same transaction as what it derived from it.

Alert evaluation and the bar builder each keep their position here (table ``alert_log_positions``, one row
per name). A position only moves from the value the writer last saw (compare and set): a writer that lost
its lease while another moved on gets PositionConflict and stores nothing, so the holder of the lease wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from legend.adapters.sql.tables import alert_log_positions
from legend.ports.repositories import PositionConflict, PositionMove


async def move_position(conn: AsyncConnection, move: PositionMove, name: str | None = None) -> None:
    """Move the stored position of ``name`` (default: ``move.name``) from ``move.before`` to ``move.after``
    inside ``conn``'s transaction; PositionConflict when it is not at ``move.before``."""
    key = move.name if name is None else name
    c = alert_log_positions.c
    now = datetime.now(UTC)
    if move.before is None:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(alert_log_positions).values(name=key, position=move.after, updated_at=now)
                )
        except IntegrityError:
            raise PositionConflict(f"log {key}: a position is stored already") from None
        return
    result = await conn.execute(
        update(alert_log_positions)
        .where(c.name == key, c.position == move.before)
        .values(position=move.after, updated_at=now)
    )
    if result.rowcount != 1:
        raise PositionConflict(f"log {key}: the stored position is no longer {move.before}")


async def stored_position(conn: AsyncConnection, name: str) -> str | None:
    """The stored position of ``name``."""
    found = await conn.scalar(
        select(alert_log_positions.c.position).where(alert_log_positions.c.name == name)
    )
    return None if found is None else str(found)
