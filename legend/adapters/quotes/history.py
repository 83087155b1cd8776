"""What the providers' bar histories share: the exchange calendar's alignment, built once on first use."""

from __future__ import annotations

import asyncio

from legend.adapters.market_calendar import ExchangeCalendarsMarketCalendar
from legend.domain.bar_alignment import SessionAlignment
from legend.ports.market import MarketCalendar


class CalendarAlignment:
    """The session alignment of ``calendar``; without one, of NYSE (``XNYS``), read in a worker thread the
    first time history is asked for, so that a provider built without a calendar costs nothing at start."""

    def __init__(self, calendar: MarketCalendar | None) -> None:
        self._calendar = calendar
        self._alignment: SessionAlignment | None = None
        self._building = asyncio.Lock()

    async def get(self) -> SessionAlignment:
        if self._alignment is None:
            async with self._building:
                if self._alignment is None:
                    calendar = self._calendar
                    if calendar is None:
                        calendar = await asyncio.to_thread(ExchangeCalendarsMarketCalendar)
                    self._alignment = SessionAlignment(calendar.zone, calendar.session_on)
        return self._alignment
