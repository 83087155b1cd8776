"""Positions, where they are kept, and what they are worth: pure logic, no framework."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from legend.domain.messages import PriceUpdate
from legend.domain.symbols import InvalidSymbol, normalize_ticker
from legend.plugins.base import Message

MAX_QUANTITY = 1e12
MAX_COST = 1e9


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """One holding of one user: ``quantity`` shares (negative: short) bought at ``average_cost`` each."""

    ticker: str
    quantity: float
    average_cost: float
    created_at: datetime
    updated_at: datetime


class NewPosition(msgspec.Struct, frozen=True, kw_only=True):
    """A position to store, already validated."""

    ticker: str
    quantity: float
    average_cost: float


class PositionLimitReached(Exception):
    """The user holds the maximum number of positions."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"too many positions: at most {limit} per user")
        self.limit = limit


def check_position(
    ticker: object, quantity: object, average_cost: object
) -> tuple[NewPosition | None, list[tuple[str, str]]]:
    """A validated position, or the (field, message) errors."""
    errors: list[tuple[str, str]] = []
    symbol = ""
    try:
        symbol = normalize_ticker(ticker)
    except InvalidSymbol as exc:
        errors.append(("ticker", str(exc)))
    if isinstance(quantity, bool) or not isinstance(quantity, int | float) or not math.isfinite(quantity):
        errors.append(("quantity", "must be a finite number"))
    elif quantity == 0:
        errors.append(("quantity", "must not be 0 (delete the position instead)"))
    elif abs(quantity) > MAX_QUANTITY:
        errors.append(("quantity", f"must be at most {MAX_QUANTITY:g} in size"))
    if (
        isinstance(average_cost, bool)
        or not isinstance(average_cost, int | float)
        or not math.isfinite(average_cost)
    ):
        errors.append(("average_cost", "must be a finite number"))
    elif not 0 <= average_cost <= MAX_COST:
        errors.append(("average_cost", f"must be between 0 and {MAX_COST:g}"))
    if errors:
        return None, errors
    return NewPosition(ticker=symbol, quantity=float(quantity), average_cost=float(average_cost)), []  # type: ignore[arg-type]


class PositionRepository(Protocol):
    """Each user's positions, one per ticker."""

    async def positions(self, user_id: str) -> list[Position]:
        """The user's positions by ticker."""
        ...

    async def positions_of(self, user_ids: Sequence[str]) -> dict[str, list[Position]]:
        """The positions of several users (users without any are left out)."""
        ...

    async def put(
        self, user_id: str, position: NewPosition, now: datetime, limit: int
    ) -> tuple[Position, bool]:
        """Create or replace the position in ``position.ticker``; (stored, created). Raises
        PositionLimitReached when creating one more than ``limit``."""
        ...

    async def replace(self, user_id: str, positions: Sequence[NewPosition], now: datetime) -> list[Position]:
        """Make the user's positions exactly ``positions`` (tickers unique)."""
        ...

    async def delete(self, user_id: str, ticker: str) -> bool:
        """Remove one position; False when there was none."""
        ...


class InMemoryPositionRepository:
    """PositionRepository in a dictionary: a server built without a database, and tests."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Position]] = {}

    async def positions(self, user_id: str) -> list[Position]:
        return sorted(self._by_user.get(user_id, {}).values(), key=lambda p: p.ticker)

    async def positions_of(self, user_ids: Sequence[str]) -> dict[str, list[Position]]:
        return {user: await self.positions(user) for user in user_ids if self._by_user.get(user)}

    async def put(
        self, user_id: str, position: NewPosition, now: datetime, limit: int
    ) -> tuple[Position, bool]:
        held = self._by_user.setdefault(user_id, {})
        old = held.get(position.ticker)
        if old is None and len(held) >= limit:
            raise PositionLimitReached(limit)
        stored = Position(
            ticker=position.ticker,
            quantity=position.quantity,
            average_cost=position.average_cost,
            created_at=old.created_at if old else now,
            updated_at=now,
        )
        held[position.ticker] = stored
        return stored, old is None

    async def replace(self, user_id: str, positions: Sequence[NewPosition], now: datetime) -> list[Position]:
        old = self._by_user.get(user_id, {})
        self._by_user[user_id] = {
            p.ticker: Position(
                ticker=p.ticker,
                quantity=p.quantity,
                average_cost=p.average_cost,
                created_at=old[p.ticker].created_at if p.ticker in old else now,
                updated_at=now,
            )
            for p in positions
        }
        return await self.positions(user_id)

    async def delete(self, user_id: str, ticker: str) -> bool:
        return self._by_user.get(user_id, {}).pop(ticker, None) is not None


# ───────────────────────────── valuation ─────────────────────────────


class PositionValue(msgspec.Struct, kw_only=True):
    """One position at the latest price (price fields are null until the ticker has a price)."""

    ticker: str
    quantity: float
    average_cost: float
    cost_basis: float
    price: float | None
    market_value: float | None
    unrealized_pnl: float | None
    unrealized_pnl_percent: float | None
    day_change: float | None
    day_change_percent: float | None


class PortfolioUpdate(Message, tag="portfolio_update", kw_only=True):
    """The ``portfolio_update`` message: every position valued at its latest price, and totals over the
    positions that have a price (``missing_prices`` lists those that do not yet)."""

    positions: list[PositionValue]
    total_value: float
    total_cost: float
    total_unrealized_pnl: float
    total_unrealized_pnl_percent: float | None
    total_day_change: float
    missing_prices: list[str]
    as_of: str | None = None  # timestamp of the newest price used


def _money(value: float) -> float:
    return round(value, 2)


def _percent(part: float, whole: float) -> float | None:
    return round(part / abs(whole) * 100, 2) if whole else None


def valuate(positions: Sequence[Position], prices: Mapping[str, PriceUpdate]) -> PortfolioUpdate:
    """Value ``positions`` at ``prices`` (by ticker)."""
    values: list[PositionValue] = []
    total_value = total_cost = priced_cost = total_pnl = total_day = 0.0
    missing: list[str] = []
    newest: str | None = None
    for position in positions:
        cost = position.quantity * position.average_cost
        total_cost += cost
        unpriced = PositionValue(
            ticker=position.ticker,
            quantity=position.quantity,
            average_cost=position.average_cost,
            cost_basis=_money(cost),
            price=None,
            market_value=None,
            unrealized_pnl=None,
            unrealized_pnl_percent=None,
            day_change=None,
            day_change_percent=None,
        )
        price = prices.get(position.ticker)
        if price is None:
            missing.append(position.ticker)
            values.append(unpriced)
            continue
        value = position.quantity * price.price
        pnl = value - cost
        day = position.quantity * price.change
        total_value += value
        priced_cost += cost
        total_pnl += pnl
        total_day += day
        if newest is None or price.timestamp > newest:
            newest = price.timestamp
        values.append(
            msgspec.structs.replace(
                unpriced,
                price=price.price,
                market_value=_money(value),
                unrealized_pnl=_money(pnl),
                unrealized_pnl_percent=_percent(pnl, cost),
                day_change=_money(day),
                day_change_percent=round(price.change_percent, 2),
            )
        )
    return PortfolioUpdate(
        positions=values,
        total_value=_money(total_value),
        total_cost=_money(total_cost),
        total_unrealized_pnl=_money(total_pnl),
        total_unrealized_pnl_percent=_percent(total_pnl, priced_cost),
        total_day_change=_money(total_day),
        missing_prices=missing,
        as_of=newest,
    )
