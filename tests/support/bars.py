"""Bars made up for the tests of the bar store and the bars API: numbered, each a step after the last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legend.domain.bars import Bar, BarInterval

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # a Monday, 09:30 in New York
STEP: dict[BarInterval, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


def bar(
    ticker: str = "AAPL",
    interval: BarInterval = "1m",
    n: int = 0,
    *,
    closed: bool = True,
    close: float | None = None,
    start: datetime = T0,
) -> Bar:
    """The ``n``-th bar of ``interval`` from ``start``: closing at 100 + ``n`` unless ``close`` is given."""
    price = 100.0 + n if close is None else close
    return Bar(
        ticker=ticker,
        interval=interval,
        start=start + n * STEP[interval],
        open=price - 0.5,
        high=price + 1.0,
        low=price - 1.0,
        close=price,
        volume=1000 * (n + 1),
        regular=True,
        closed=closed,
    )
