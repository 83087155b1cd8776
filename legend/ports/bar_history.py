"""Past bars from a quote provider that has them: an optional capability of a QuoteProvider.

A provider with history lets a chart be full from the first start: the backfill service
(``legend.services.bars.backfill``) asks it for the bars the store does not have yet. Read it with
``bar_history(provider)``; a provider without it (a plugin's, say) gives None and charts fill from live
prices alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol, runtime_checkable

from legend.domain.bars import Bar, BarInterval
from legend.ports.quotes import QuoteProvider

#: The most bars one ``bars`` call returns; a caller asks for shorter stretches.
MAX_HISTORY_BARS: Final = 20_000


@runtime_checkable
class BarHistory(Protocol):
    """Closed bars of the past, aligned to the exchange's sessions (docs/bars.md)."""

    async def history_until(self, ticker: str) -> datetime | None:
        """Where the ticker's history ends now: the provider's present (a replay's own time, not the wall
        clock's); None when the provider does not know the ticker."""
        ...

    async def bars(self, ticker: str, interval: BarInterval, start: datetime, end: datetime) -> list[Bar]:
        """The closed bars of ``ticker`` at ``interval`` that start in ``[start, end)`` (timezone-aware),
        oldest first, at most MAX_HISTORY_BARS; raises a ProviderError when the provider fails."""
        ...


def bar_history(provider: QuoteProvider) -> BarHistory | None:
    """The provider as a BarHistory when it has history, else None."""
    return provider if isinstance(provider, BarHistory) else None
