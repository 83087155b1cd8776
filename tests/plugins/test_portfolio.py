"""The portfolio plugin: valuation; positions stored per user (memory, SQLite, PostgreSQL); the REST API
scoped to the caller with field-level 400s; and, over a real server and real WebSockets, a private
``portfolio`` channel that reaches only its owner, with live values while the quote poller polls the
positions' tickers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from legend.adapters.sql import Database, SqlAlchemyPluginStateRepository
from legend.app import create_app
from legend.bootstrap import Services
from legend.domain.inputs import PriceInput
from legend.domain.messages import PriceUpdate
from legend.plugins.builtin.portfolio.model import (
    InMemoryPositionRepository,
    NewPosition,
    Position,
    PositionLimitReached,
    PositionRepository,
    check_position,
    valuate,
)
from legend.plugins.builtin.portfolio.plugin import PortfolioDesk
from legend.plugins.builtin.portfolio.storage import SqlAlchemyPositionRepository
from legend.plugins.schemas import enabled_schemas
from legend.plugins.store import InMemoryPluginStateRepository, PluginStateRepository, PluginStore
from legend.settings import Settings
from tests.support.postgres import PostgresDatabases
from tests.support.server import LegendServer
from tests.support.streaming import send
from tests.support.transport import RecordingTransport
from tests.support.wsclient import Client, connect

from .helpers import ADMIN, eventually, plugin_server

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def price(ticker: str, value: float, change: float) -> PriceUpdate:
    return PriceUpdate(
        ticker=ticker,
        price=value,
        change=change,
        change_percent=round(change / (value - change) * 100, 4),
        volume=1,
        high=value,
        low=value,
        open=value,
        timestamp="2026-01-05T15:00:00.000Z",
    )


def held(ticker: str, quantity: float, cost: float) -> Position:
    return Position(ticker=ticker, quantity=quantity, average_cost=cost, created_at=NOW, updated_at=NOW)


def test_valuation_of_long_short_and_unpriced_positions() -> None:
    update = valuate(
        [held("AAPL", 10, 150.0), held("TSLA", -5, 200.0), held("MSFT", 3, 300.0)],
        {"AAPL": price("AAPL", 160.0, 2.0), "TSLA": price("TSLA", 180.0, -4.0)},
    )
    aapl, tsla, msft = update.positions
    assert (aapl.market_value, aapl.unrealized_pnl, aapl.unrealized_pnl_percent, aapl.day_change) == (
        1600.0,
        100.0,
        6.67,
        20.0,
    )
    assert (tsla.market_value, tsla.unrealized_pnl, tsla.day_change) == (-900.0, 100.0, 20.0)  # a short gains
    assert tsla.unrealized_pnl_percent == 10.0
    assert msft.price is None and msft.market_value is None and msft.cost_basis == 900.0
    assert update.missing_prices == ["MSFT"]
    assert (update.total_value, update.total_cost, update.total_unrealized_pnl, update.total_day_change) == (
        700.0,
        1400.0,
        200.0,
        40.0,
    )
    assert update.total_unrealized_pnl_percent == 40.0  # of the priced positions' cost (1500 - 1000)
    assert update.as_of == "2026-01-05T15:00:00.000Z"


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        (("aapl", 1.5, 10), []),
        (("A$", 1, 1), ["ticker"]),
        (("AAPL", 0, 1), ["quantity"]),
        (("AAPL", True, 1), ["quantity"]),
        (("AAPL", float("nan"), -1), ["quantity", "average_cost"]),
        (("AAPL", 1e13, 1e10), ["quantity", "average_cost"]),
    ],
)
def test_positions_are_checked_field_by_field(raw: tuple[Any, Any, Any], errors: list[str]) -> None:
    position, problems = check_position(*raw)
    assert [key for key, _ in problems] == errors
    assert (position is None) == bool(errors)


# ───────────────────────────── repositories on every backend ─────────────────────────────


@pytest.fixture(scope="module")
def postgres_url(postgres: PostgresDatabases) -> str:
    """The module's database on the session's PostgreSQL (dropped with the others at the end)."""
    return postgres.create("plugins")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def repositories(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[tuple[PositionRepository, PluginStateRepository]]:
    if request.param == "memory":
        yield InMemoryPositionRepository(), InMemoryPluginStateRepository()
        return
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/p.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url, migrate_on_start=True)
    assert await database.start(enabled_schemas(Settings())) == {}  # the portfolio's own table too
    try:
        yield SqlAlchemyPositionRepository(database), SqlAlchemyPluginStateRepository(database)
    finally:
        await database.close()


async def test_positions_are_kept_per_user(
    repositories: tuple[PositionRepository, PluginStateRepository],
) -> None:
    repo, _ = repositories
    ann, bob = f"ann-{secrets.token_hex(3)}", f"bob-{secrets.token_hex(3)}"
    stored, created = await repo.put(
        ann, NewPosition(ticker="MSFT", quantity=2, average_cost=300), NOW, limit=2
    )
    assert created and stored.created_at == NOW
    later = NOW + timedelta(minutes=5)
    stored, created = await repo.put(
        ann, NewPosition(ticker="MSFT", quantity=3, average_cost=310), later, limit=2
    )
    assert not created and (stored.quantity, stored.created_at, stored.updated_at) == (3, NOW, later)
    await repo.put(ann, NewPosition(ticker="AAPL", quantity=1, average_cost=150), NOW, limit=2)
    with pytest.raises(PositionLimitReached):
        await repo.put(ann, NewPosition(ticker="TSLA", quantity=1, average_cost=1), NOW, limit=2)
    assert [p.ticker for p in await repo.positions(ann)] == ["AAPL", "MSFT"]
    assert await repo.positions(bob) == []
    assert not await repo.delete(bob, "AAPL")  # another user's position is not there for bob
    await repo.put(bob, NewPosition(ticker="NVDA", quantity=-4, average_cost=500), NOW, limit=2)
    both = await repo.positions_of([ann, bob, "nobody"])
    assert {user: [p.ticker for p in ps] for user, ps in both.items()} == {
        ann: ["AAPL", "MSFT"],
        bob: ["NVDA"],
    }
    replaced = await repo.replace(ann, [NewPosition(ticker="MSFT", quantity=1, average_cost=1)], later)
    assert [(p.ticker, p.quantity, p.created_at) for p in replaced] == [("MSFT", 1, NOW)]
    assert await repo.delete(ann, "MSFT") and await repo.positions(ann) == []


async def test_plugin_state_is_kept_per_plugin(
    repositories: tuple[PositionRepository, PluginStateRepository],
) -> None:
    _, state = repositories
    plugin = f"p-{secrets.token_hex(3)}"
    store, other = PluginStore(state, plugin), PluginStore(state, plugin + "x")
    assert await store.get("etag", "none") == "none"
    await store.put("etag", {"etag": '"abc"', "n": [1, 2]})
    await store.put("etag", {"etag": '"def"'})
    assert await store.get("etag") == {"etag": '"def"'} and await other.get("etag") is None
    assert await store.delete("etag") and not await store.delete("etag")


# ───────────────────────────── over a real server ─────────────────────────────


@pytest.fixture(scope="module")
def server() -> Iterator[LegendServer]:
    srv = plugin_server(
        {
            "plugins": {"enabled": ["portfolio"]},
            "plugins.portfolio": {"max_positions": 3, "update_interval": 0.1},
        }
    ).start()
    try:
        yield srv
    finally:
        srv.close()


def api(server: LegendServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/portfolio", headers={"X-User-Id": user}, timeout=10)


def test_positions_api_is_scoped_to_the_caller(server: LegendServer) -> None:
    with api(server, "rest-ann") as ann, api(server, "rest-bob") as bob:
        created = ann.put("/positions/aapl", json={"quantity": 10, "average_cost": 150})
        assert created.status_code == 201 and created.json()["ticker"] == "AAPL"
        replaced = ann.put("/positions/AAPL", json={"quantity": 12, "average_cost": 151.5})
        assert replaced.status_code == 200 and replaced.json()["quantity"] == 12
        assert [p["ticker"] for p in ann.get("/positions").json()["positions"]] == ["AAPL"]
        assert ann.get("/positions/aapl").json()["average_cost"] == 151.5
        assert bob.get("/positions").json() == {"positions": [], "max_positions": 3}
        assert bob.get("/positions/AAPL").status_code == 404
        assert bob.delete("/positions/AAPL").status_code == 404
        assert ann.get("/positions").json()["positions"][0]["quantity"] == 12  # bob changed nothing
        everything = ann.put(
            "/positions",
            json={
                "positions": [
                    {"ticker": "msft", "quantity": 1, "average_cost": 300},
                    {"ticker": "TSLA", "quantity": -2, "average_cost": 250},
                ]
            },
        )
        assert [p["ticker"] for p in everything.json()["positions"]] == ["MSFT", "TSLA"]
        assert ann.put("/positions/NVDA", json={"quantity": 1, "average_cost": 1}).status_code == 201
        full = ann.put("/positions/AMD", json={"quantity": 1, "average_cost": 1})
        assert full.status_code == 409 and "at most 3" in full.json()["detail"]
        assert ann.delete("/positions/NVDA").status_code == 204
        assert ann.delete("/positions").status_code == 204 and ann.get("/positions").json()["positions"] == []
        assert httpx.get(f"{server.url}/api/portfolio/positions?user_id=bad$id", timeout=5).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "keys"),
    [
        ("/positions/AAPL", {"quantity": "ten", "average_cost": 1}, {"quantity"}),
        ("/positions/AAPL", {"quantity": 0, "average_cost": -1}, {"quantity", "average_cost"}),
        ("/positions/AAPL", {"average_cost": 1}, {"quantity"}),
        ("/positions/AAPL", {"quantity": 1, "average_cost": 1, "note": "x"}, {"note"}),
        ("/positions/A$PL", {"quantity": 1, "average_cost": 1}, {"ticker"}),
        (
            "/positions",
            {
                "positions": [
                    {"ticker": "AAPL", "quantity": 1, "average_cost": 1},
                    {"ticker": "aapl", "quantity": 1, "average_cost": -5},
                ]
            },
            {"positions[1].ticker", "positions[1].average_cost"},
        ),
    ],
)
def test_invalid_positions_get_400_naming_each_field(
    server: LegendServer, path: str, body: Any, keys: set[str]
) -> None:
    with api(server, "rest-val") as client:
        response = client.put(path, json=body)
        assert response.status_code == 400, response.text
        assert {e["key"] for e in response.json()["extra"]} == keys
        assert client.get("/positions").json()["positions"] == []  # nothing was written


async def updates(client: Client, count: int, match: Any = None) -> list[dict[str, Any]]:
    def wanted(m: dict[str, Any]) -> bool:
        return m.get("type") == "portfolio_update" and (match is None or match(m))

    return await client.collect(wanted, count, timeout=10)


def broadcast_price(server: LegendServer, ticker: str, value: float, change: float) -> None:
    body = {
        "ticker": ticker,
        "price": value,
        "change": change,
        "change_percent": round(change / (value - change) * 100, 2),
        "volume": 1000,
        "high": value,
        "low": value,
        "open_price": value,
    }
    response = httpx.post(f"{server.url}/api/ws/broadcast/price", json=body, headers=ADMIN, timeout=5)
    assert response.status_code == 200, response.text


async def test_private_portfolios_reach_only_their_owner_with_live_values(server: LegendServer) -> None:
    with api(server, "alice") as alice_api, api(server, "bob") as bob_api:
        assert alice_api.put("/positions/ZZAA", json={"quantity": 10, "average_cost": 150}).status_code == 201
        assert bob_api.put("/positions/ZZBB", json={"quantity": 4, "average_cost": 20}).status_code == 201
    alice, bob = await connect(server.ws_url, "alice"), await connect(server.ws_url, "bob")
    ack, [snapshot_history] = await alice.subscribe("portfolio")
    assert (
        ack["streams"] == ["portfolio:user:alice"] and snapshot_history["channel"] == "portfolio:user:alice"
    )
    ack, _ = await bob.subscribe("portfolio")
    assert ack["streams"] == ["portfolio:user:bob"]
    # the positions' tickers are polled while their owners are subscribed: a price arrives without
    # anyone subscribing to ticker:ZZAA (the simulated provider knows every ticker)
    [first] = await updates(alice, 1, lambda m: m["positions"][0]["price"] is not None)
    assert first["channel"] == "portfolio:user:alice" and first["positions"][0]["ticker"] == "ZZAA"
    # Bob's subscription asks for a poll of ZZAA and ZZBB (ZZAA published first): once his price is in,
    # no simulated ZZAA price is still on its way to overwrite the broadcast below.
    await updates(bob, 1, lambda m: m["positions"][0]["price"] is not None)
    broadcast_price(server, "ZZAA", 200.0, 5.0)
    [live] = await updates(alice, 1, lambda m: m["positions"][0]["price"] == 200.0)
    position = live["positions"][0]
    assert (position["market_value"], position["unrealized_pnl"], position["unrealized_pnl_percent"]) == (
        2000.0,
        500.0,
        33.33,
    )
    assert (
        position["day_change"],
        live["total_value"],
        live["total_cost"],
        live["total_unrealized_pnl"],
    ) == (50.0, 2000.0, 1500.0, 500.0)
    assert live["missing_prices"] == [] and live["seq"] >= 1 and live["timestamp"]
    broadcast_price(server, "ZZBB", 25.0, 1.0)
    [bobs] = await updates(bob, 1, lambda m: m["positions"][0]["price"] == 25.0)
    assert bobs["channel"] == "portfolio:user:bob" and bobs["total_unrealized_pnl"] == 20.0
    # a position changed through the API is valued and sent at once
    with api(server, "alice") as alice_api:
        alice_api.put("/positions/ZZAA", json={"quantity": 20, "average_cost": 150})
    [changed] = await updates(alice, 1, lambda m: m["positions"][0]["quantity"] == 20)
    assert changed["total_value"] == 4000.0
    # nothing of one reached the other
    await alice.quiet(0.2)
    await bob.quiet(0.2)
    for client, own, other in ((alice, "alice", "ZZBB"), (bob, "bob", "ZZAA")):
        data = [m for m in client.received if m["type"] in ("portfolio_update", "history")]
        assert data and all(m["channel"] == f"portfolio:user:{own}" for m in data)
        assert not any(other in str(m) for m in client.received)
    # there is no way to name another user's stream
    await bob.send({"type": "subscribe", "channel": "portfolio", "ticker": "alice"})
    error = await bob.expect("error")
    assert error["message"] == "Channel 'portfolio' takes no ticker"
    await alice.close()
    await bob.close()


def test_the_valuation_endpoint_answers_the_caller(server: LegendServer) -> None:
    with api(server, "val-user") as client:
        client.put("/positions/QQQ", json={"quantity": 2, "average_cost": 100})
        snapshot = client.get("/").json()
        assert snapshot["type"] == "portfolio_update" and snapshot["positions"][0]["ticker"] == "QQQ"
        assert snapshot["total_cost"] == 200.0


# ───────────────────────────── prices of the REST valuation ─────────────────────────────


async def test_the_rest_valuation_leaves_no_stale_price_behind(build: Callable[..., Services]) -> None:
    """GET /api/portfolio of a user nobody values live must not cache that ticker's price: ``on_price``
    refreshes only held tickers, so a cached one went stale for later GETs and the first live update."""
    services = build({"enabled": ["portfolio"]})
    assert services.plugins is not None
    context = services.plugins.records["portfolio"].context
    assert context is not None
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        desk = context.singleton(PortfolioDesk)
        await desk.repository.put("ann", NewPosition(ticker="ZZQQ", quantity=10, average_cost=100.0), NOW, 10)
        await services.publisher.price(PriceInput(ticker="ZZQQ", price=110.0))

        async def valued() -> float | None:
            response = await client.get("/api/portfolio/", headers={"X-User-Id": "ann"})
            assert response.status_code == 200, response.text
            value: float | None = response.json()["positions"][0]["price"]
            return value

        assert await valued() == 110.0
        assert desk.prices == {}  # nobody subscribed holds ZZQQ: nothing is kept
        await services.publisher.price(PriceInput(ticker="ZZQQ", price=120.0))
        await asyncio.sleep(0.05)  # the price reached the plugin's mailbox (and was not kept)
        assert await valued() == 120.0
        session = services.streaming.open_session(RecordingTransport(), "ann")
        await send(services.streaming, session, "subscribe", channel="portfolio")

        def first_update() -> dict[str, Any] | None:
            replay = services.backplane._log.after("portfolio:user:ann", None)[0]  # type: ignore[attr-defined]
            return msgspec.json.decode(replay[0].text) if replay else None

        update = await eventually(first_update, what="the first live valuation")
        assert update["positions"][0]["price"] == 120.0
        assert set(desk.prices) == {"ZZQQ"}  # held by a subscribed user now: kept fresh by on_price
        await services.publisher.price(PriceInput(ticker="ZZQQ", price=130.0))
        await eventually(lambda: desk.prices["ZZQQ"].price == 130.0, what="the live price")
        assert await valued() == 130.0
