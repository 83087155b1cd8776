"""What publishers hand in (the specification's broadcast bodies), validated field by field before anything is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from legend.domain.symbols import Ticker, normalize_ticker

Price = Annotated[float, msgspec.Meta(gt=0, lt=1e9)]
Money = Annotated[float, msgspec.Meta(gt=-1e9, lt=1e9)]
Percent = Annotated[float, msgspec.Meta(gt=-1e6, lt=1e6)]
Volume = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Label = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_ .\-/]{1,40}$")]
UserId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.@|\-]{1,64}$")]


class _Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PriceInput(_Input):
    """A price update to broadcast (seed: ``POST /api/ws/broadcast/price``); ``open_price`` is sent as ``open``."""

    ticker: Ticker
    price: Price
    change: Money | None = None  # default: price - previous_close, or 0 without one
    change_percent: Percent | None = None
    volume: Volume = 0
    high: Price | None = None
    low: Price | None = None
    open_price: Price | None = None
    previous_close: Price | None = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        self.ticker = normalize_ticker(self.ticker)
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        high = self.high if self.high is not None else self.price
        low = self.low if self.low is not None else self.price
        if not low <= self.price <= high:
            raise ValueError(f"price ({self.price}) must lie between low ({low}) and high ({high})")
        if self.open_price is not None and not low <= self.open_price <= high:
            raise ValueError(f"open_price ({self.open_price}) must lie between low ({low}) and high ({high})")
        if self.previous_close is not None:
            # change and change_percent drive alert rules: with a previous close they must agree with it
            change = round(self.price - self.previous_close, 4)
            percent = round(change / self.previous_close * 100, 2)
            if self.change is None:
                self.change = change
            elif abs(self.change - change) > 0.01:
                raise ValueError(f"change ({self.change}) disagrees with price - previous_close ({change})")
            if self.change_percent is None:
                self.change_percent = percent
            elif abs(self.change_percent - percent) > 0.01:
                raise ValueError(
                    f"change_percent ({self.change_percent}) disagrees with previous_close ({percent})"
                )


class PatternInput(_Input):
    """A pattern detection to broadcast (seed: ``POST /api/ws/broadcast/pattern``)."""

    ticker: Ticker
    pattern_type: Label
    score: Annotated[float, msgspec.Meta(ge=0, le=100)]
    entry_price: Price
    stop_price: Price
    target_price: Price
    risk_reward_ratio: Annotated[float, msgspec.Meta(ge=0, lt=1e6)] | None = None
    message: Text | None = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        self.ticker = normalize_ticker(self.ticker)
        if self.stop_price == self.entry_price:
            raise ValueError("stop_price must differ from entry_price")


class AlertInput(_Input):
    """An alert trigger to broadcast (seed: ``POST /api/ws/broadcast/alert``).

    With ``user_id`` it reaches only that user's ``alerts`` subscriptions; without, every subscriber.
    """

    ticker: Ticker
    alert_type: Label
    trigger_price: Price
    current_price: Price
    message: Text | None = None
    user_id: UserId | None = None
    alert_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        self.ticker = normalize_ticker(self.ticker)


class MarketStatusInput(_Input):
    """A market status to broadcast (seed: ``POST /api/ws/broadcast/market_status``), e.g. a halt."""

    status: Literal["open", "closed", "pre_market", "after_hours", "halted"]
    next_open: datetime | None = None
    next_close: datetime | None = None
    timestamp: datetime | None = None
