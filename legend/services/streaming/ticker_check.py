"""Whether the quote provider has prices for a ticker, asked on its first subscription and remembered.

A symbol the provider does not know, and for which nobody has published a price either (an admin
broadcast, a plugin, another program), is refused on subscribe (``unknown_ticker``) instead of being
streamed as silence. The answer is remembered (known ones for a day, unknown ones for an hour, at most
``max_entries``); a provider that cannot answer in time, or fails, lets the subscription through: a slow
vendor must not lock traders out of their tickers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from legend.ports.clock import Clock
from legend.ports.quotes import QuoteProvider

log = logging.getLogger("legend.streaming")

KNOWN_FOR = 86_400.0
UNKNOWN_FOR = 3_600.0


class TickerCheck:
    """Asks ``provider.known(tickers)`` (providers without it know every ticker)."""

    def __init__(
        self,
        provider: QuoteProvider,
        clock: Clock,
        timeout: float = 3.0,
        max_entries: int = 10_000,
        published: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.provider = provider
        # Whether prices were published for a ticker (an admin broadcast, a plugin, another program): it
        # is known then, whatever the provider says.
        self.published = published
        self.clock = clock
        self.timeout = timeout
        self.max_entries = max_entries
        self._known: Callable[[Iterable[str]], Awaitable[set[str]]] | None = getattr(provider, "known", None)
        self._answers: OrderedDict[str, tuple[bool, float]] = OrderedDict()  # ticker -> (known, until)
        self.simulated = bool(getattr(provider, "simulated", False))
        self._note: Callable[[str], str] | None = getattr(provider, "note", None)

    def note(self, ticker: str) -> str | None:
        """What a subscriber to ``ticker`` should know about its prices: the provider's ``note(ticker)``
        when it has one, else that they are simulated (only for a simulated provider), else None."""
        if self._note is not None:
            return self._note(ticker)
        if self.simulated:
            return f"Prices of {ticker} are simulated (quotes.provider = {self.provider.name!r})"
        return None

    async def unknown(self, ticker: str) -> bool:
        """True only when the provider says it has no prices for ``ticker``."""
        if self._known is None:
            return False
        now = self.clock.monotonic()
        answer = self._answers.get(ticker)
        if answer is not None and answer[1] > now:
            return not answer[0] and not await self._published(ticker)
        try:
            async with asyncio.timeout(self.timeout):
                known = ticker in await self._known([ticker])
        except Exception as exc:  # a vendor that is down or slow: let the subscription through
            log.warning("could not check ticker %s with %s: %s", ticker, self.provider.name, exc)
            return False
        self._answers[ticker] = (known, now + (KNOWN_FOR if known else UNKNOWN_FOR))
        self._answers.move_to_end(ticker)
        if len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
        return not known and not await self._published(ticker)

    async def _published(self, ticker: str) -> bool:
        if self.published is None:
            return False
        try:
            return await self.published(ticker)
        except Exception:  # the backplane is down: the provider's word stands
            return False
