"""The partition matrix (issue 25): an instance cut from its database, cut from Redis and the database at
once, the alert evaluator's lease holder cut from Redis or frozen past its lease, the quote poller's holder
cut from Redis, and a slow link to Redis.

Two real ``legend serve`` processes on a private ``redis-server`` and, for the alert scenarios, one
database on the session's private PostgreSQL: A reaches Redis and/or the database through a
``FaultProxy`` each (tests/support/fault_proxy.py), B both directly. A is started first and made the
holder of the lease under test, so the fault always hits the holder. Prices that cross a rule are
published while the fault lasts, and every crossing must fire exactly once: stored once, once in its
owner's stream, received once by the owner's WebSocket client, by ``alert_id``, as
tests/cluster/test_alerts_cluster.py checks. ``-s`` shows the measured timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.cluster.conftest import LEASE_TTL, pattern, stats, until
from tests.cluster.test_alerts_cluster import TICKER, Alerts, crossings, keys, migrated_postgres
from tests.cluster.test_multi_instance import gap_free, is_price
from tests.cluster.test_partitions import QUICK
from tests.support.fault_proxy import FaultProxy
from tests.support.postgres import PostgresDatabases
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer, merge
from tests.support.wsclient import Client, Message, connect

CUT = 5.0  # seconds a fault lasts at least: past lease_ttl (2 s), several evaluation rounds
SETTLE = 10.0  # seconds the crossings of a fault have to fire once it is over (they took 0.12 s at most)
COMMAND_TIMEOUT = 3.0  # database.command_timeout: a query on the cut link fails after it, then retries
# The database cut: long enough for A's evaluation to fail for over lease_ttl (a query, then a new
# connection, each failing after COMMAND_TIMEOUT) and hand the lease over, and for B to evaluate after.
DATABASE_CUT = 11.0
TAKEOVER = 3.0  # seconds from losing the quote poller to the next price, at most (issue 25)

ALERTS: dict[str, dict[str, Any]] = {  # prices only from the tests (the replay provider has no ALRT)
    "realtime": {"update_interval": 3600, "after_hours_interval": 3600, "history_size": 5000},
    "quotes": {"provider": "replay"},
    "alerts": {"retry_interval": 0.5},
}
PRICES: dict[str, dict[str, Any]] = {  # the simulated provider, polled twice a second in and out of hours
    "realtime": {"update_interval": 0.5, "after_hours_interval": 0.5},
}


class NotFired(AssertionError):
    """The crossings of a fault had not all fired ``SETTLE`` seconds after it ended."""


class Matrix(Alerts):
    """A Redis, instance A whose link to Redis (``redis_proxy``) and/or to the database
    (``database_proxy``) goes through a fault proxy, and instance B on both directly. ``database``: a
    shared PostgreSQL URL, or None for a SQLite file per instance."""

    def __init__(
        self,
        database: str | None,
        *,
        cut_redis: bool = False,
        cut_database: bool = False,
        **sections: dict[str, Any],
    ) -> None:
        self.sent = 0
        self.redis = RedisServer().start()
        self.redis_proxy = FaultProxy(self.redis.port).start() if cut_redis else None
        self.database_proxy: FaultProxy | None = None
        a_database = database
        if cut_database:
            assert database is not None
            self.database_proxy = FaultProxy(int(make_url(database).port or 5432)).start()
            a_database = make_url(database).set(port=self.database_proxy.port).render_as_string(False)

        def config(redis_url: str, database_url: str | None) -> dict[str, dict[str, Any]]:
            base: dict[str, dict[str, Any]] = {
                "redis": {**quick_redis_settings(redis_url, LEASE_TTL), **QUICK}
            }
            if database_url is not None:
                base["database"] = {"url": database_url, "command_timeout": COMMAND_TIMEOUT}
            return merge(base, sections)

        self.a = LegendServer(
            config(self.redis_proxy.url if self.redis_proxy else self.redis.url, a_database)
        )
        self.b = LegendServer(config(self.redis.url, database))
        self.servers = [self.a, self.b]

    async def start_holding(
        self, http: httpx.AsyncClient, holds: Callable[[httpx.AsyncClient, LegendServer], Awaitable[bool]]
    ) -> None:
        """Start A, wait until ``holds`` says it holds the lease under test, then start B."""
        await asyncio.to_thread(self.a.start, 60)
        await until(lambda: holds(http, self.a), 15, "A holds the lease")
        await asyncio.to_thread(self.b.start, 60)

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.close()
        for proxy in (self.redis_proxy, self.database_proxy):
            if proxy is not None:
                proxy.close()
        self.redis.close()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.logs()[-6000:]}" for n, s in (("A", self.a), ("B", self.b)))

    async def settled(self, rule: int, count: int, user: str = "alice") -> float:
        """Wait until ``user``'s stream carries ``count`` triggers (NotFired, saying what each instance's
        evaluation reports, if not within ``SETTLE``); then, after a lease's time for a late duplicate to
        show, check that they are triggers 1..count of ``rule``, in order, once each. Returns how long
        the wait took."""

        async def enough() -> list[str] | None:
            ids = await self.triggers(user)
            return ids if len(ids) >= count else None

        started = time.monotonic()
        try:
            await until(enough, SETTLE, f"{count} triggers for {user}")
        except AssertionError as exc:
            evaluation = {n: s.stats()["alerting"]["evaluation"] for n, s in (("A", self.a), ("B", self.b))}
            raise NotFired(f"{exc}; got {await self.triggers(user)}; evaluation {evaluation}") from None
        took = time.monotonic() - started
        await asyncio.sleep(LEASE_TTL)
        got = await self.triggers(user)
        assert got == keys(rule, count), f"expected {keys(rule, count)}, got {got}"
        return took


@pytest.fixture
def shared_postgres(postgres: PostgresDatabases) -> str:
    """A migrated database on the session's PostgreSQL, for both instances."""
    return migrated_postgres(postgres)


@pytest.fixture
def matrix(request: pytest.FixtureRequest) -> Iterator[Callable[..., Matrix]]:
    """Makes clusters; kills every process at the end and prints the logs of a test that failed."""
    made: list[Matrix] = []
    failed_before = request.session.testsfailed

    def make(database: str | None, **options: Any) -> Matrix:
        made.append(Matrix(database, **options))
        return made[-1]

    try:
        yield make
    finally:
        for cluster in made:
            if request.session.testsfailed > failed_before:
                print(cluster.logs())
            cluster.close()


# ───────────────────────────── helpers ─────────────────────────────


async def evaluates(http: httpx.AsyncClient, server: LegendServer) -> bool:
    return bool((await stats(http, server))["alerting"]["evaluation"]["evaluating"])


async def polls(http: httpx.AsyncClient, server: LegendServer) -> bool:
    return bool((await stats(http, server))["streamer"]["leader"])


async def ready(http: httpx.AsyncClient, server: LegendServer) -> tuple[int, dict[str, Any]]:
    response = await http.get(f"{server.url}/ready")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def is_ready(http: httpx.AsyncClient, server: LegendServer) -> bool:
    return (await ready(http, server))[0] == 200


async def logged(server: LegendServer, line: str) -> bool:
    return line in server.logs()


async def price(http: httpx.AsyncClient, server: LegendServer, value: float) -> int:
    """Publish a price of ``TICKER`` through ``server``'s REST broadcast: its seq."""
    response = await http.post(
        f"{server.url}/api/ws/broadcast/price", json={"ticker": TICKER, "price": value}, headers=server.admin
    )
    assert response.status_code == 200, response.text
    return int(response.json()["seq"])


async def crossing_before_the_fault(http: httpx.AsyncClient, server: LegendServer) -> list[float]:
    """99, 101, 99 through ``server``: the rule learns its side, then fires once. The prices sent."""
    prices = [99.0, 101.0, 99.0]
    for value in prices:
        await price(http, server, value)
    return prices


async def cross_for(
    http: httpx.AsyncClient,
    through: Sequence[LegendServer],
    prices: list[float],
    seconds: float,
    taker: LegendServer,
) -> float | None:
    """Publish crossings (101 then 99) through ``through`` in turn for ``seconds``, adding them to
    ``prices``; returns how long after the start ``taker`` was first seen evaluating (None: not by the end)."""
    started = time.monotonic()
    took: float | None = None
    i = 0
    while time.monotonic() - started < seconds:
        for value in (101.0, 99.0):
            await price(http, through[i % len(through)], value)
            prices.append(value)
        i += 1
        if took is None and await evaluates(http, taker):
            took = time.monotonic() - started
        await asyncio.sleep(0.2)
    return took


def price_with(seq: int) -> Callable[[Message], bool]:
    return lambda m: bool(is_price(TICKER)(m)) and m["seq"] == seq


def received(client: Client, kind: str) -> list[Message]:
    return [m for m in client.received if m.get("type") == kind]


def statuses(client: Client) -> list[str]:
    return [m["status"] for m in received(client, "service_status")]


async def drain(client: Client, kind: str, count: int, timeout: float = SETTLE) -> list[Message]:
    """Read until ``client`` has received ``count`` messages of ``kind`` in all, then for a short quiet
    spell in which a duplicate would show. Returns them all."""
    deadline = time.monotonic() + timeout
    while len(received(client, kind)) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(received(client, kind))} of {count} {kind} within {timeout} s"
        await client.recv(left)
    await client.quiet(0.5)
    return received(client, kind)


def alert_ids(messages: list[Message]) -> list[str]:
    return [m["alert_id"] for m in messages]


@contextlib.asynccontextmanager
async def reading(*clients: Client) -> AsyncIterator[None]:
    """Read ``clients`` all along (a message's ``_at`` is when it arrived, not when the test looked).
    Told to stop rather than cancelled: Python 3.11's ``wait_for`` loses a cancellation that comes as a
    message arrives, and the reader would go on."""
    stop = asyncio.Event()

    async def read(client: Client) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await client.recv(0.1)

    tasks = [asyncio.create_task(read(client)) for client in clients]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


# ───────────────────────────── the alert evaluator ─────────────────────────────


@pytest.mark.postgres
async def test_the_evaluator_cut_from_the_database_fires_every_crossing_once(
    matrix: Callable[..., Matrix], shared_postgres: str
) -> None:
    """A evaluates and loses its database for ``CUT`` seconds while crossings are published through A
    and B. Meanwhile every price reaches A's clients (the price log is Redis's) and A's ``/ready`` answers
    503 naming the database (Redis still ok); its stats (printed) show A still evaluating and ``lag``
    growing. A query under way on the cut link fails after ``database.command_timeout`` (before it had
    none: the query waited forever, and with it the evaluation, whose lease stayed renewed, so nothing
    fired after healing), and the evaluation retries; once it has failed for longer than ``lease_ttl`` it
    hands the lease over and B, whose database works, evaluates during the cut. Once healed every
    crossing must have fired exactly once."""
    m = matrix(shared_postgres, cut_database=True, **ALERTS)
    a, b, proxy = m.a, m.b, m.database_proxy
    assert proxy is not None
    async with httpx.AsyncClient(timeout=10) as http:
        await m.start_holding(http, evaluates)
        rule = await m.rule(http, b, "alice")
        alice = await connect(a.ws_url, user_id="alice")
        await alice.subscribe("alerts")
        prices = await crossing_before_the_fault(http, b)
        watcher = await connect(a.ws_url, user_id="watcher")
        await watcher.subscribe("ticker", TICKER)  # a known ticker once a price was published
        await drain(alice, "alert_trigger", 1, 10)

        cut_at = time.monotonic()
        proxy.blackhole()
        late = 0.0  # the longest a price published during the cut took to reach A's client
        i = 0
        while time.monotonic() - cut_at < DATABASE_CUT:
            for value in (101.0, 99.0):
                sent = time.monotonic()
                seq = await price(http, (a, b)[i % 2], value)
                prices.append(value)
                await watcher.expect(price_with(seq), 3)
                late = max(late, time.monotonic() - sent)
            i += 1
        code, body = await ready(http, a)
        evaluation = (await stats(http, a))["alerting"]["evaluation"]
        b_evaluates = await evaluates(http, b)
        proxy.pass_through()
        expected = crossings(prices)
        print(
            f"\ndatabase cut {time.monotonic() - cut_at:.1f} s, {expected - 1} crossings in it: prices on A's"
            f" client within {late:.2f} s; /ready {code} database {body['database']}; evaluation"
            f" evaluating={evaluation['evaluating']} lag={evaluation['lag']} failures={evaluation['failures']}"
            f" last_error={evaluation['last_error']!r} handed_over={evaluation['handed_over']}; B evaluating"
            f" {b_evaluates}"
        )
        assert code == 503 and body["database"]["ok"] is False and body["backplane"]["ok"] is True, body
        assert evaluation["handed_over"] >= 1 and b_evaluates, (evaluation, b_evaluates)

        took = await m.settled(rule, expected)
        assert alert_ids(await drain(alice, "alert_trigger", expected)) == keys(rule, expected)
        _, back = await until(lambda: is_ready(http, a), 10, "A ready again")
        print(f"all {expected} triggers {took:.2f} s after healing; A ready {back:.2f} s after that")
        assert "degraded" not in statuses(alice)  # Redis was fine all along
        events = await http.get(f"{b.url}/api/alerts/events?limit=100", headers={"X-User-Id": "alice"})
        stored = events.json()["events"]
        assert sorted(alert_ids(stored)) == sorted(keys(rule, expected))
        assert all(e["published"] for e in stored)
        await alice.close()
        await watcher.close()


@pytest.mark.postgres
async def test_an_instance_cut_from_redis_and_the_database_at_once_loses_nothing(
    matrix: Callable[..., Matrix], shared_postgres: str
) -> None:
    """A evaluates and loses Redis and its database together, until its subscription is known dead, while
    crossings are published through B: B takes evaluation over once A's lease lapses; after healing every
    crossing has fired exactly once, and A's client, told ``degraded``, gets every trigger it missed and
    an ``ok`` that says nothing was lost."""
    m = matrix(shared_postgres, cut_redis=True, cut_database=True, **ALERTS)
    a, b = m.a, m.b
    assert m.redis_proxy is not None and m.database_proxy is not None
    async with httpx.AsyncClient(timeout=10) as http:
        await m.start_holding(http, evaluates)
        rule = await m.rule(http, b, "alice")
        alice = await connect(a.ws_url, user_id="alice")
        await alice.subscribe("alerts")
        prices = await crossing_before_the_fault(http, b)
        await drain(alice, "alert_trigger", 1, 10)

        cut_at = time.monotonic()
        m.redis_proxy.blackhole()
        m.database_proxy.blackhole()
        degraded = await alice.expect("service_status", timeout=15)
        assert degraded["status"] == "degraded", degraded
        told = degraded["_at"] - cut_at
        took_over = await cross_for(http, [b], prices, CUT - told, taker=b)
        await until(lambda: logged(a, "lost the Redis subscription"), 15, "A lost its subscription")
        code, body = await ready(http, a)
        m.redis_proxy.pass_through()
        m.database_proxy.pass_through()
        healed_at = time.monotonic()
        ok = await alice.expect("service_status", timeout=15)

        expected = crossings(prices)
        took = await m.settled(rule, expected)
        triggers = await drain(alice, "alert_trigger", expected)
        print(
            f"\nRedis and database cut {healed_at - cut_at:.1f} s, {expected - 1} crossings in it: degraded"
            f" {told:.2f} s after the cut, B evaluating {told + (took_over or 0):.1f} s after it, ok"
            f" {ok['_at'] - healed_at:.2f} s after healing, every trigger stored {took:.2f} s after that;"
            f" A's /ready during the cut {code}: backplane {body['backplane']['last_error']!r},"
            f" database {body['database'].get('error')!r}"
        )
        assert took_over is not None, "B did not take evaluation over during the cut"
        assert code == 503 and not body["backplane"]["ok"] and not body["database"]["ok"], body
        assert alert_ids(triggers) == keys(rule, expected)
        assert ok["status"] == "ok" and ok["complete"] is True, ok
        assert statuses(alice) == ["degraded", "ok"], statuses(alice)
        assert not received(alice, "gap")
        assert not await evaluates(http, a)
        await alice.close()


@pytest.mark.postgres
async def test_the_evaluator_cut_from_redis_past_its_lease_is_taken_over_and_fires_nothing_again(
    matrix: Callable[..., Matrix], shared_postgres: str
) -> None:
    """A evaluates and is cut from Redis past ``lease_ttl`` while crossings are published through B: B
    takes evaluation over and delivers them during the cut; after healing A evaluates nothing again,
    and every crossing has fired once, for the owner's clients on both instances."""
    m = matrix(shared_postgres, cut_redis=True, **ALERTS)
    a, b, proxy = m.a, m.b, m.redis_proxy
    assert proxy is not None
    async with httpx.AsyncClient(timeout=10) as http:
        await m.start_holding(http, evaluates)
        rule = await m.rule(http, b, "alice")
        on_a = await connect(a.ws_url, user_id="alice")
        await on_a.subscribe("alerts")
        on_b = await connect(b.ws_url, user_id="alice")
        await on_b.subscribe("alerts")
        prices = await crossing_before_the_fault(http, b)
        await drain(on_b, "alert_trigger", 1, 10)
        fired_before = (await stats(http, a))["alerting"]["triggers_fired"]

        cut_at = time.monotonic()
        proxy.blackhole()
        took_over = await cross_for(http, [b], prices, CUT, taker=b)
        during = crossings(prices)
        await drain(on_b, "alert_trigger", during)  # B evaluated and delivered during the cut
        await until(lambda: logged(a, "lost the Redis subscription"), 15, "A lost its subscription")
        proxy.pass_through()
        healed_at = time.monotonic()
        for value in (101.0, 99.0):  # a crossing after healing, through A
            await price(http, a, value)
            prices.append(value)

        expected = crossings(prices)
        took = await m.settled(rule, expected)
        for client in (on_a, on_b):
            assert alert_ids(await drain(client, "alert_trigger", expected)) == keys(rule, expected)
        a_stats, b_stats = (await stats(http, a)), (await stats(http, b))
        print(
            f"\nevaluator cut from Redis {healed_at - cut_at:.1f} s, {during - 1} crossings in it: B"
            f" evaluating {took_over or 0:.2f} s after the cut and delivering them live; every trigger stored"
            f" {took:.2f} s after healing; fired by A {a_stats['alerting']['triggers_fired']}, by B"
            f" {b_stats['alerting']['triggers_fired']}; A told {statuses(on_a)}"
        )
        assert took_over is not None, "B did not take evaluation over during the cut"
        assert a_stats["alerting"]["evaluation"]["evaluating"] is False
        assert "alerts" not in a_stats["backplane"]["leases"] and "alerts" in b_stats["backplane"]["leases"]
        assert a_stats["alerting"]["triggers_fired"] == fired_before  # A fired nothing after the cut
        assert fired_before + b_stats["alerting"]["triggers_fired"] == expected
        assert statuses(on_a)[:2] == ["degraded", "ok"] and received(on_a, "service_status")[1]["complete"]
        await on_a.close()
        await on_b.close()


@pytest.mark.postgres
async def test_the_evaluator_frozen_past_its_lease_is_taken_over_and_fires_nothing_again(
    matrix: Callable[..., Matrix], shared_postgres: str
) -> None:
    """A evaluates and is frozen (SIGSTOP) past ``lease_ttl`` while crossings are published through B:
    B takes over; after SIGCONT A fires nothing again, every crossing fires once and A's clients get
    the whole history."""
    m = matrix(shared_postgres, **ALERTS)
    a, b = m.a, m.b
    async with httpx.AsyncClient(timeout=10) as http:
        await m.start_holding(http, evaluates)
        rule = await m.rule(http, b, "alice")
        on_b = await connect(b.ws_url, user_id="alice")
        await on_b.subscribe("alerts")
        prices = await crossing_before_the_fault(http, b)
        await drain(on_b, "alert_trigger", 1, 10)
        fired_before = (await stats(http, a))["alerting"]["triggers_fired"]

        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            took_over = await cross_for(http, [b], prices, CUT, taker=b)
            during = crossings(prices)
            await drain(on_b, "alert_trigger", during)
        finally:
            a.process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        for value in (101.0, 99.0):  # a crossing after the SIGCONT, through A
            await price(http, a, value)
            prices.append(value)

        expected = crossings(prices)
        took = await m.settled(rule, expected)
        assert alert_ids(await drain(on_b, "alert_trigger", expected)) == keys(rule, expected)
        on_a = await connect(a.ws_url, user_id="alice")
        _, histories = await on_a.subscribe("alerts")
        (history,) = [h for h in histories if h["channel"] == "alerts:user:alice"]
        assert alert_ids(history["messages"]) == keys(rule, expected)
        a_stats, b_stats = (await stats(http, a)), (await stats(http, b))
        print(
            f"\nevaluator frozen {resumed - stopped:.1f} s, {during - 1} crossings meanwhile: B evaluating"
            f" {took_over or 0:.2f} s after the SIGSTOP; every trigger stored {took:.2f} s after the SIGCONT; fired"
            f" by A {a_stats['alerting']['triggers_fired']}, by B {b_stats['alerting']['triggers_fired']};"
            f" A's position conflicts {a_stats['alerting']['evaluation']['position_conflicts']}"
        )
        assert took_over is not None, "B did not take evaluation over during the freeze"
        assert a_stats["alerting"]["evaluation"]["evaluating"] is False
        assert "alerts" not in a_stats["backplane"]["leases"] and "alerts" in b_stats["backplane"]["leases"]
        assert a_stats["alerting"]["triggers_fired"] == fired_before
        assert fired_before + b_stats["alerting"]["triggers_fired"] == expected
        await on_a.close()
        await on_b.close()


# ───────────────────────────── the quote poller and a slow link ─────────────────────────────


async def test_the_quote_poller_cut_from_redis_is_taken_over_within_3_s_and_publishes_nothing_stale(
    matrix: Callable[..., Matrix],
) -> None:
    """A polls and is cut from Redis (blackholed, not killed) past ``poller_lease_ttl``: a client of B
    gets prices again within 3 s, one gap-free ``seq`` throughout; A stops polling at its first round
    that fails, and after healing it polls no more and has published nothing since the cut."""
    m = matrix(None, cut_redis=True, **PRICES)
    a, b, proxy = m.a, m.b, m.redis_proxy
    assert proxy is not None
    async with httpx.AsyncClient(timeout=10) as http:
        await m.start_holding(http, polls)
        client = await connect(b.ws_url, user_id="steady")
        await client.subscribe("ticker", "AAPL")
        await client.collect(is_price("AAPL"), 3, timeout=10)
        cut_at = time.monotonic()
        proxy.blackhole()
        cut_wall = time.time()  # once the cut holds: nothing A sends from here on reaches Redis
        first = await client.expect(lambda msg: is_price("AAPL")(msg) and msg["_at"] > cut_at, timeout=10)
        back = first["_at"] - cut_at
        assert await polls(http, b)
        assert not await polls(http, a)
        await until(lambda: logged(a, "lost the Redis subscription"), 15, "A lost its subscription")
        proxy.pass_through()
        healed_at = time.monotonic()
        await until(lambda: is_ready(http, a), 10, "A ready again")
        await client.collect(lambda msg: is_price("AAPL")(msg) and msg["_at"] > healed_at, 6, 10)
        status = (await stats(http, a))["streamer"]
        print(
            f"\npoller cut from Redis {healed_at - cut_at:.1f} s: prices back on B {back:.2f} s after the"
            f" cut; after healing A: leader {status['leader']}, fenced {status['fenced']}, lease_lost"
            f" {status['lease_lost']}, last publish {status['last_publish']} (cut at"
            f" {datetime.fromtimestamp(cut_wall, UTC).time()})"
        )
        assert back < TAKEOVER, f"prices back only {back:.2f} s after the poller was cut"
        assert status["leader"] is False and await polls(http, b)
        assert status["lease_lost"] >= 1, status  # counted: it stopped polling when it could not renew
        last = status["last_publish"]
        assert last is None or datetime.fromisoformat(last).timestamp() < cut_wall, status
        seqs = [msg["seq"] for msg in client.received if is_price("AAPL")(msg)]
        assert gap_free(seqs), seqs  # one sequence: nothing published twice, late or out of turn
        await client.close()


async def test_half_a_second_of_latency_on_the_link_to_redis_loses_and_reorders_nothing(
    matrix: Callable[..., Matrix],
) -> None:
    """A's link to Redis delays every chunk by 0.5 s each way while B polls prices and pattern alerts
    are published through both: the clients of A and of B get every pattern alert once, in ``seq``
    order, and prices in order (a burst may conflate them: they are latest-value)."""
    slow = {"redis": {"socket_timeout": 2.0, "connect_timeout": 2.0}}  # the defaults: above a 1 s round trip
    m = matrix(None, cut_redis=True, **merge(PRICES, slow))
    a, b, proxy = m.a, m.b, m.redis_proxy
    assert proxy is not None
    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.to_thread(b.start, 60)  # B polls: A's clients get prices over the slow link
        await until(lambda: polls(http, b), 15, "B polls")
        await asyncio.to_thread(a.start, 60)
        clients = {}
        for name, server in (("A", a), ("B", b)):
            client = await connect(server.ws_url, user_id=f"on{name}")
            await client.subscribe("patterns")
            await client.subscribe("ticker", "AAPL")
            clients[name] = client
        await clients["A"].collect(is_price("AAPL"), 2, timeout=10)
        seqs: list[int] = []
        answered: list[float] = []  # seconds a publish through A took
        async with reading(*clients.values()):
            proxy.delay(0.5)
            slowed = time.monotonic()
            i = 0
            while time.monotonic() - slowed < CUT:
                server = (a, b)[i % 2]
                sent = time.monotonic()
                response = await http.post(
                    f"{server.url}/api/ws/broadcast/pattern", json=pattern(i), headers=server.admin
                )
                assert response.status_code == 200, response.text
                if server is a:
                    answered.append(time.monotonic() - sent)
                seqs.append(response.json()["seq"])
                i += 1
            proxy.pass_through()
            await asyncio.sleep(1.0)  # what the link still held
        for name, client in clients.items():
            got = [msg["seq"] for msg in await drain(client, "pattern_alert", len(seqs))]
            assert got == seqs, (name, got, seqs)
            prices = [msg["seq"] for msg in client.received if is_price("AAPL")(msg)]
            assert prices == sorted(set(prices)), (name, prices)
            told = received(client, "service_status")
            assert not told or (told[-1]["status"] == "ok" and told[-1]["complete"] is True), (name, told)
        arrived = {
            n: {msg["seq"]: msg["_at"] for msg in received(c, "pattern_alert")} for n, c in clients.items()
        }
        behind = [arrived["A"][seq] - arrived["B"][seq] for seq in seqs]
        a_prices = [msg["seq"] for msg in clients["A"].received if is_price("AAPL")(msg)]
        conflated = (await stats(http, a))["prices_conflated"]
        print(
            f"\n{len(seqs)} pattern alerts in {CUT:.0f} s of 0.5 s latency, each client got all, in order: a"
            f" publish through A answered in {min(answered):.2f}-{max(answered):.2f} s; A's client"
            f" {min(behind):.2f}-{max(behind):.2f} s behind B's; A's AAPL seqs {a_prices} ({conflated}"
            f" conflated); A's client told {statuses(clients['A'])}"
        )
        for client in clients.values():
            await client.close()
