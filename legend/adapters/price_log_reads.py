"""The PriceLog port of a backplane, answered by the price log it keeps (memory, SQL or Redis)."""

from __future__ import annotations

from legend.ports.price_log import LogRead, PriceLog


class PriceLogReads:
    """Mixed into a backplane that keeps its price log in ``self.price_log``: alert evaluation reads it
    through the backplane, whichever log that is."""

    price_log: PriceLog

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        return await self.price_log.read(after, count, wait)

    async def end(self) -> str:
        return await self.price_log.end()

    async def note_rule_change(self, rule_id: int) -> None:
        await self.price_log.note_rule_change(rule_id)
