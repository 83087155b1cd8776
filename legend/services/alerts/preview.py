"""Where a rule would have fired over the stored bars of the last days, before the trader arms it.

One evaluator, two inputs: the preview runs the rule through the same ``RuleRunner`` live evaluation
uses, fed with prices rebuilt from the stored 1-minute bars in time order: a bar's open at its start, then
its low and high (the nearer to the open first), then its close at the instant of its last price. A bar
of one price is that one price, at its instant, so prices stored one a minute preview exactly as they
fired live. A rule that sees bar closes only needs each minute's close and volume (the bars it sees are
built from them); one that sees prices needs no bars built. Bar kinds start from the stored bars of their interval before the period (their warm-up);
windows from the 1-minute bars before it. The rule is evaluated as if created at the start of the period,
around its expiry (``expires_at`` is the future's business).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec

from legend.domain.alert_checks import check_rule
from legend.domain.alert_features import AlertFeatures
from legend.domain.alert_index import RuleIndex
from legend.domain.alert_rules import Evaluate, RuleSpec, new_rule
from legend.domain.alert_runner import RuleRunner
from legend.domain.bar_alignment import SessionLookup
from legend.domain.bars import Bar
from legend.ports.bars import MAX_HISTORY, BarStore

MAX_DAYS = 30
MAX_FIRES = 1000  # listed; a rule that fires more often than this says so (``truncated``)


class PreviewFire(msgspec.Struct, frozen=True):
    """One trigger the rule would have fired: when, at what price, and what its owner would have read."""

    at: datetime
    price: float
    message: str


class Preview(msgspec.Struct, frozen=True):
    """The fires, oldest first, and the bars evaluated: how many 1-minute bars, from when to when."""

    fires: list[PreviewFire]
    bars: int
    start: datetime | None
    end: datetime | None
    truncated: bool = False


async def minute_bars(store: BarStore, ticker: str, since: datetime, before: datetime) -> list[Bar]:
    """The stored 1-minute bars of ``ticker`` starting in [since, before), oldest first."""
    found: list[Bar] = []
    cursor: datetime | None = before
    while cursor is not None:
        page = await store.history(ticker, "1m", MAX_HISTORY, before=cursor)
        kept = [bar for bar in page if bar.start >= since]
        found[:0] = kept
        cursor = page[0].start if len(page) == MAX_HISTORY and len(kept) == len(page) else None
    return found


def bar_prices(bar: Bar, session_volume: float) -> Iterator[tuple[datetime, float, float]]:
    """The prices a stored bar stands for, as (instant, price, session volume): see the module docstring."""
    last = bar.last_at or bar.start
    if bar.open == bar.high == bar.low == bar.close:
        yield last, bar.close, session_volume
        return
    before = session_volume - bar.volume
    span = (last - bar.start) / 3
    near, far = (bar.low, bar.high) if bar.open - bar.low <= bar.high - bar.open else (bar.high, bar.low)
    path = ((bar.start, bar.open), (bar.start + span, near), (bar.start + 2 * span, far), (last, bar.close))
    previous = None
    for instant, price in path:
        if price != previous:
            yield instant, price, session_volume if instant == last else before
        previous = price


async def preview(
    spec: RuleSpec,
    days: int,
    store: BarStore,
    now: datetime,
    zone: str = "UTC",
    session_on: SessionLookup | None = None,
) -> Preview:
    """Where ``spec`` would have fired over the last ``days`` (1 to MAX_DAYS) of stored bars; raises
    RuleInvalid for an invalid rule and ValueError for ``days`` out of range."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: must be from 1 to {MAX_DAYS}, got {days}")
    spec = msgspec.structs.replace(check_rule(spec), expires_at=None)
    start = now - timedelta(days=days)
    rule = new_rule(spec, "preview", start, rule_id=1)
    at_closes = rule.evaluate is Evaluate.BAR_CLOSE
    runner = RuleRunner(RuleIndex([rule], AlertFeatures()), zone, session_on, bars=at_closes)
    ticker = rule.ticker
    if rule.evaluate is Evaluate.BAR_CLOSE and rule.interval is not None:
        need = (rule.period or 0) + 1
        runner.seed_series(
            bar for bar in await store.history(ticker, rule.interval, need, before=start) if bar.closed
        )
    if rule.window_seconds:
        runner.seed_window(
            await minute_bars(store, ticker, start - timedelta(seconds=rule.window_seconds), start)
        )
    bars = await minute_bars(store, ticker, start, now)
    fires: list[PreviewFire] = []
    truncated = False
    day: object = None
    cumulative = 0.0
    previous_close = last_close = None  # the regular session's last close: the day before's, today's so far
    for bar in bars:
        exchange_day = runner.builder.alignment.day_at(int(bar.start.timestamp() * 1_000_000)).day
        if exchange_day != day:
            day, cumulative = exchange_day, 0.0
            previous_close = last_close if last_close is not None else previous_close
            last_close = None
        cumulative += bar.volume
        if bar.regular:
            last_close = bar.close
        session_volume = float(bar.session_volume) if bar.session_volume is not None else cumulative
        prices = (
            [(bar.last_at or bar.start, bar.close, session_volume)]
            if at_closes
            else bar_prices(bar, session_volume)
        )
        for instant, price, volume in prices:
            change = (price - previous_close) / previous_close * 100.0 if previous_close else 0.0
            for evaluation in runner.price(ticker, price, change, volume, instant, instant):
                runner.index.commit(evaluation, evaluation.transitions)
                for fired in evaluation.fired():
                    event = fired.event
                    if event is None:
                        continue
                    if len(fires) == MAX_FIRES:
                        truncated = True
                        break
                    fires.append(PreviewFire(event.triggered_at, event.price, event.message))
    return Preview(
        fires=fires,
        bars=len(bars),
        start=bars[0].start if bars else None,
        end=bars[-1].start + timedelta(minutes=1) if bars else None,
        truncated=truncated,
    )
