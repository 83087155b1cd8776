"""The ``portfolio`` plugin's hooks: a private ``portfolio`` channel, the positions API and the valuation.

Written as any third-party plugin would be: only hooks and the ``PluginContext``.

- Channel ``portfolio``: private, one stream per user (``portfolio:user:{id}``) and no public stream, so a
  client only ever receives its own portfolio. Conflated: a client always ends on the newest valuation.
- Valuation: on every instance (``every_instance``) for the users subscribed there. A price of a ticker
  someone holds marks that user's portfolio dirty; at most one ``portfolio_update`` per user per
  ``update_interval`` is published. A first one is sent right after subscribing.
- While a user is subscribed, the quote poller polls the tickers of their positions (``add_interest``).
- Positions changed through the REST API are valued and published at once by the instance that took
  the request; other instances re-read the positions of their subscribers every ``reload_interval``.
- Storage: its own table, ``portfolio_positions`` (``storage.py``, revisions in ``migrations/``), declared
  by ``register_storage`` and migrated with the server's tables; without a database, positions are kept
  in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.spec import SecurityRequirement
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from legend.domain.messages import PriceUpdate
from legend.domain.symbols import InvalidSymbol, TickerText, normalize_ticker
from legend.domain.timefmt import iso
from legend.plugins import (
    BackplaneUnavailable,
    ChannelSpec,
    Delivery,
    PluginConfig,
    PluginContext,
    RegisterChannel,
    RegisterFeed,
    RegisterRoute,
    RegisterStorage,
    hookimpl,
)
from legend.plugins.builtin.portfolio.model import (
    InMemoryPositionRepository,
    NewPosition,
    PortfolioUpdate,
    Position,
    PositionLimitReached,
    PositionRepository,
    check_position,
    valuate,
)
from legend.plugins.builtin.portfolio.storage import MIGRATIONS, SqlAlchemyPositionRepository, metadata
from legend.plugins.web import Conflict, current_user, field_errors, invalid

CHANNEL = "portfolio"
log = logging.getLogger("legend.plugins.portfolio")


class PortfolioConfig(PluginConfig):
    """``[plugins.portfolio]``."""

    max_positions: Annotated[int, msgspec.Meta(gt=0, le=10_000)] = 200  # per user
    update_interval: Annotated[float, msgspec.Meta(gt=0)] = (
        1.0  # seconds between updates to one user, at least
    )
    reload_interval: Annotated[float, msgspec.Meta(ge=0)] = 30.0  # re-read subscribers' positions; 0: never
    history_size: Annotated[int, msgspec.Meta(ge=0, le=100)] = 1  # the latest valuation, for resume


# ───────────────────────────── hooks ─────────────────────────────


@hookimpl
def config_schema() -> type[PortfolioConfig]:
    return PortfolioConfig


@hookimpl
def register_channels(register: RegisterChannel, config: PortfolioConfig) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            schema=PortfolioUpdate,
            delivery=Delivery.CONFLATE,
            private=True,
            public_stream=False,
            history_size=config.history_size,
            description="Your positions valued at live prices, with P&L (private: only your own).",
        )
    )


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(PortfolioController)


@hookimpl
def register_feeds(register: RegisterFeed) -> None:
    register("valuation", valuation, every_instance=True)


@hookimpl
def register_storage(register: RegisterStorage) -> None:
    register(metadata, MIGRATIONS)  # the table portfolio_positions (storage.py) and its revisions


@hookimpl
def on_startup(context: PluginContext) -> None:
    desk = context.singleton(PortfolioDesk)
    context.on_price(desk.on_price)
    context.on_subscribe(CHANNEL, desk.on_subscribe)
    context.add_interest(desk.tickers)


async def valuation(context: PluginContext) -> None:
    """The feed: publish the portfolios that prices changed, throttled per user."""
    await context.singleton(PortfolioDesk).run()


# ───────────────────────────── the desk ─────────────────────────────


class PortfolioDesk:
    """Positions of the users subscribed on this instance, the latest prices, and who needs an update."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.config: PortfolioConfig = context.config
        database = context.database
        if database is not None:
            self.repository: PositionRepository = SqlAlchemyPositionRepository(database)
        else:
            log.warning("no database: positions are kept in memory and lost at exit")
            self.repository = InMemoryPositionRepository()
        self.held: dict[str, list[Position]] = {}  # subscribed users' positions
        self.holders: dict[str, set[str]] = {}  # ticker -> subscribed users holding it
        self.prices: dict[str, PriceUpdate] = {}  # tickers in `holders` only (on_price keeps them fresh)
        self.dirty: set[str] = set()
        self.last_sent: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.next_reload = 0.0

    # what the quote poller polls
    def tickers(self) -> Iterable[str]:
        return list(self.holders)

    def _hold(self, user_id: str, positions: list[Position]) -> None:
        self._drop(user_id)
        self.held[user_id] = positions
        for position in positions:
            self.holders.setdefault(position.ticker, set()).add(user_id)

    def _drop(self, user_id: str) -> None:
        for position in self.held.pop(user_id, []):
            users = self.holders.get(position.ticker)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self.holders[position.ticker]
                    self.prices.pop(position.ticker, None)
        self.dirty.discard(user_id)
        self.last_sent.pop(user_id, None)

    async def prices_for(self, positions: list[Position]) -> dict[str, PriceUpdate]:
        """The latest price of each position's ticker, for valuing them now.

        ``self.prices`` is kept fresh by ``on_price`` only for tickers a user subscribed here holds
        (``holders``): only those are taken from it and cached in it. Any other ticker's price comes from
        its stream's latest message and is not kept (it would go stale, and the map would grow without
        bound). Tickers without a price yet are polled soon."""
        prices: dict[str, PriceUpdate] = {}
        for ticker in dict.fromkeys(p.ticker for p in positions):
            cached = self.prices.get(ticker) if ticker in self.holders else None
            if cached is not None:
                prices[ticker] = cached
                continue
            try:
                last = await self.context.last_message(self.context.stream("ticker", ticker))
            except BackplaneUnavailable:
                last = None
            if last is None:
                continue
            try:
                price = msgspec.convert(last, PriceUpdate)
            except msgspec.ValidationError:
                continue
            if ticker in self.holders:  # on_price keeps it fresh from now on (and may have already)
                price = self.prices.setdefault(ticker, price)
            prices[ticker] = price
        if any(p.ticker not in prices for p in positions):
            self.context.poll_soon()
        return prices

    async def on_subscribe(self, user_id: str, key: str | None) -> None:
        positions = await self.repository.positions(user_id)
        self._hold(user_id, positions)
        await self.prices_for(positions)  # caches them: the user's tickers are held now
        await self.publish(user_id)

    async def changed(self, user_id: str) -> None:
        """Positions of ``user_id`` changed here: value them now if the user is subscribed here."""
        if user_id not in self.held and user_id not in self.context.subscribers(CHANNEL):
            return
        await self.on_subscribe(user_id, None)

    async def on_price(self, price: PriceUpdate) -> None:
        """On the event loop (``async def``): it wakes the valuation task, and plain callbacks run in a
        worker thread, where asyncio objects must not be touched."""
        users = self.holders.get(price.ticker)
        if users is None:
            return
        self.prices[price.ticker] = price
        self.dirty.update(users)
        self.wake.set()

    async def snapshot(self, positions: list[Position]) -> PortfolioUpdate:
        """Positions (of anyone, subscribed or not) valued at the latest prices."""
        return valuate(positions, await self.prices_for(positions))

    async def publish(self, user_id: str) -> None:
        positions = self.held.get(user_id)
        if positions is None:
            return
        update = valuate(positions, self.prices)
        self.dirty.discard(user_id)
        self.last_sent[user_id] = self.context.clock.monotonic()
        try:
            await self.context.publish(self.context.stream(CHANNEL, user_id=user_id), update)
        except BackplaneUnavailable as exc:
            self.dirty.add(user_id)  # try again next round
            log.warning("portfolio of %s not published: %s", user_id, exc)
            return
        self.context.metrics["updates_published"] = self.context.metrics.get("updates_published", 0) + 1

    async def _reload(self) -> None:
        users = list(self.held)
        if not users:
            return
        found = await self.repository.positions_of(users)
        for user in users:
            positions = found.get(user, [])
            if positions != self.held.get(user):
                self._hold(user, positions)
                await self.prices_for(positions)
                self.dirty.add(user)

    async def run(self) -> None:
        clock = self.context.clock
        interval = self.config.update_interval
        reload_every = self.config.reload_interval
        self.next_reload = clock.monotonic() + reload_every
        while True:
            now = clock.monotonic()
            subscribed = self.context.subscribers(CHANNEL)
            for user in [u for u in self.held if u not in subscribed]:
                self._drop(user)
            if reload_every and now >= self.next_reload:
                self.next_reload = now + reload_every
                await self._reload()
            waits: list[float] = []
            for user in list(self.dirty):
                since = now - self.last_sent.get(user, float("-inf"))
                if since >= interval:
                    await self.publish(user)
                else:
                    waits.append(interval - since)
            if reload_every:
                waits.append(max(self.next_reload - clock.monotonic(), 0.0))
            if self.held:
                waits.append(max(interval, 1.0))  # notice unsubscribed users
            self.wake.clear()
            try:
                async with asyncio.timeout(min(waits) if waits else None):
                    await self.wake.wait()
            except TimeoutError:
                pass


# ───────────────────────────── REST: /api/portfolio ─────────────────────────────


class PositionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A position in one ticker (the ticker is in the path)."""

    quantity: Annotated[
        float, msgspec.Meta(description="Shares held; negative for a short position.", examples=[10])
    ]
    average_cost: Annotated[
        float, msgspec.Meta(description="Average price paid per share.", examples=[150.0])
    ]


class PositionItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A position in a list."""

    ticker: TickerText
    quantity: float
    average_cost: float


class PositionsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every position of the caller (replaces all of them)."""

    positions: list[PositionItem]


class PositionView(msgspec.Struct, kw_only=True):
    """A stored position."""

    ticker: str
    quantity: float
    average_cost: float
    created_at: str
    updated_at: str


class PositionsView(msgspec.Struct, kw_only=True):
    """The caller's positions, by ticker."""

    positions: list[PositionView]
    max_positions: int


def _view(position: Position) -> PositionView:
    return PositionView(
        ticker=position.ticker,
        quantity=position.quantity,
        average_cost=position.average_cost,
        created_at=iso(position.created_at),
        updated_at=iso(position.updated_at),
    )


def _symbol(raw: str) -> str | None:
    try:
        return normalize_ticker(raw)
    except InvalidSymbol:
        return None


def _ticker(raw: str) -> str:
    try:
        return normalize_ticker(raw)
    except InvalidSymbol as exc:
        raise invalid(("ticker", str(exc)), source="path") from None


_USER_SECURITY: list[SecurityRequirement] = [{"userToken": []}, {"devUserId": []}]


class PortfolioController(Controller):
    """The caller's positions (the ``portfolio`` channel values them live)."""

    path = "/api/portfolio"
    tags = ["portfolio"]
    security = _USER_SECURITY
    dependencies = {"user_id": current_user}
    exception_handlers = {ValidationException: field_errors}

    @get("/", summary="The caller's portfolio valued now")
    async def valuation(
        self, plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> PortfolioUpdate:
        """What the ``portfolio`` channel would send now (prices from the ticker streams' latest)."""
        desk = plugin.singleton(PortfolioDesk)
        positions = await desk.repository.positions(user_id)
        snapshot = await desk.snapshot(positions)
        snapshot.timestamp = iso(plugin.clock.now())
        return snapshot

    @get("/positions", summary="The caller's positions")
    async def list_positions(
        self, plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> PositionsView:
        """Every position of the caller, by ticker."""
        desk = plugin.singleton(PortfolioDesk)
        positions = await desk.repository.positions(user_id)
        return PositionsView(positions=[_view(p) for p in positions], max_positions=desk.config.max_positions)

    @get("/positions/{ticker:str}", summary="One position")
    async def get_position(
        self, ticker: FromPath[str], plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> PositionView:
        """The caller's position in ``ticker``; 404 when there is none."""
        symbol = _ticker(ticker)
        for position in await plugin.singleton(PortfolioDesk).repository.positions(user_id):
            if position.ticker == symbol:
                return _view(position)
        raise NotFoundException(detail=f"no position in {symbol}")

    @put("/positions/{ticker:str}", summary="Create or replace a position")
    async def put_position(
        self,
        ticker: FromPath[str],
        data: JSONBody[PositionBody],
        plugin: NamedDependency[PluginContext],
        user_id: NamedDependency[str],
    ) -> Response[PositionView]:
        """Set the caller's position in ``ticker``: 201 when created, 200 when replaced; 400 naming the
        invalid fields; 409 when the caller holds ``max_positions`` already."""
        position, errors = check_position(ticker, data.quantity, data.average_cost)
        if position is None:
            raise invalid(*[(key, message, "path" if key == "ticker" else "body") for key, message in errors])
        desk = plugin.singleton(PortfolioDesk)
        try:
            stored, created = await desk.repository.put(
                user_id, position, plugin.clock.now(), desk.config.max_positions
            )
        except PositionLimitReached as exc:
            raise Conflict(detail=str(exc)) from None
        await desk.changed(user_id)
        return Response(_view(stored), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @put("/positions", summary="Replace every position")
    async def put_positions(
        self,
        data: JSONBody[PositionsBody],
        plugin: NamedDependency[PluginContext],
        user_id: NamedDependency[str],
    ) -> PositionsView:
        """Make the caller's positions exactly these (an empty list removes all); 400 naming each invalid
        field as ``positions[i].field``; nothing is changed then."""
        desk = plugin.singleton(PortfolioDesk)
        limit = desk.config.max_positions
        if len(data.positions) > limit:
            raise invalid(("positions", f"at most {limit} positions"))
        accepted: list[NewPosition] = []
        errors: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, item in enumerate(data.positions):
            position, problems = check_position(item.ticker, item.quantity, item.average_cost)
            errors.extend((f"positions[{index}].{key}", message) for key, message in problems)
            symbol = position.ticker if position is not None else _symbol(item.ticker)
            if symbol is not None and symbol in seen:
                errors.append((f"positions[{index}].ticker", f"{symbol} is listed twice"))
            if symbol is not None:
                seen.add(symbol)
            if position is not None:
                accepted.append(position)
        if errors:
            raise invalid(*errors)
        stored = await desk.repository.replace(user_id, accepted, plugin.clock.now())
        await desk.changed(user_id)
        return PositionsView(positions=[_view(p) for p in stored], max_positions=limit)

    @delete("/positions/{ticker:str}", summary="Remove a position", status_code=HTTP_204_NO_CONTENT)
    async def delete_position(
        self, ticker: FromPath[str], plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> None:
        """Remove the caller's position in ``ticker``; 404 when there is none."""
        symbol = _ticker(ticker)
        desk = plugin.singleton(PortfolioDesk)
        if not await desk.repository.delete(user_id, symbol):
            raise NotFoundException(detail=f"no position in {symbol}")
        await desk.changed(user_id)

    @delete("/positions", summary="Remove every position", status_code=HTTP_204_NO_CONTENT)
    async def delete_positions(
        self, plugin: NamedDependency[PluginContext], user_id: NamedDependency[str]
    ) -> None:
        """Remove all of the caller's positions."""
        desk = plugin.singleton(PortfolioDesk)
        await desk.repository.replace(user_id, [], plugin.clock.now())
        await desk.changed(user_id)
