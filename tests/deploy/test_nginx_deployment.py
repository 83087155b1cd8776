"""The deployment as shipped: Debian's nginx running deploy/nginx.conf in front of two ``legend serve``
instances on one Redis and one PostgreSQL (migrated once with ``legend db upgrade``, as the compose file's
``migrate`` service does), with clients connecting from several addresses (127.0.0.2, .3 …).

nginx speaks to the instances from an address of its own (``proxy_bind``, as from its container) inside
the network the instances trust (``server.forwarded_allow_ips``, as deploy/docker-compose.yml sets it):
the per-address limits and the logs then see each real client, never nginx; a client resumes by ``since``
on whichever instance nginx picks; and a rolling restart (SIGTERM one instance, start it again, then the
other) while prices and alert triggers flow leaves every client with every message, gap-free, and every
trigger exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from functools import partial
from typing import Any

import httpx
import pytest
import websockets

from tests.cluster.conftest import until
from tests.cluster.test_alerts_cluster import crossings, keys
from tests.support.nginx import Nginx
from tests.support.postgres import PostgresDatabases
from tests.support.redis_server import RedisServer, quick_redis_settings
from tests.support.server import LegendServer
from tests.support.wsclient import Client, source

pytestmark = pytest.mark.postgres

TRUSTED = "127.0.0.8/29"  # the "compose network": 127.0.0.8 to 127.0.0.15, clients are outside it
NGINX_ADDRESS = "127.0.0.10"  # where nginx speaks to the instances from
PER_ADDRESS = 4  # [realtime] max_connections_per_ip


class Deployment:
    """Redis, PostgreSQL, two instances and nginx; every process is stopped on ``close()``."""

    def __init__(self, database_url: str) -> None:
        self.redis = RedisServer().start()
        config: dict[str, dict[str, Any]] = {
            "server": {"log_level": "info", "forwarded_allow_ips": [TRUSTED]},
            "redis": quick_redis_settings(self.redis.url, 2.0),
            "realtime": {
                "update_interval": 3600,
                "after_hours_interval": 3600,
                "history_size": 5000,
                "max_messages_per_second": 1000,  # no conflation: every price reaches every client
                "max_connections_per_ip": PER_ADDRESS,
            },
            "quotes": {
                "provider": "replay"
            },  # the tests' tickers are not in its data: only their prices move
            "database": {"url": database_url},
            "alerts": {"retry_interval": 0.5},
        }
        self.servers = [LegendServer(config) for _ in range(2)]
        self.nginx: Nginx | None = None

    def start(self) -> Deployment:
        try:
            self.migrate()
            for server in self.servers:
                server.start(timeout=60)
            upstreams = [f"127.0.0.1:{server.port}" for server in self.servers]
            self.nginx = Nginx(upstreams, source=NGINX_ADDRESS).start()
        except BaseException:
            self.close()
            raise
        return self

    def migrate(self) -> None:
        """``legend db upgrade``, once, before the instances start (deploy/docker-compose.yml: migrate)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEGEND_") and k != "REDIS_URL"}
        config = str(self.servers[0].config_path)
        done = subprocess.run(
            [sys.executable, "-m", "legend", "db", "upgrade", "--config", config],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def close(self) -> None:
        if self.nginx is not None:
            self.nginx.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.close()
        self.redis.close()

    @property
    def front(self) -> Nginx:
        assert self.nginx is not None
        return self.nginx

    def logs(self) -> str:
        return "\n".join(server.logs() for server in self.servers)

    async def serving(self, user: str) -> LegendServer | None:
        """The instance whose log shows ``user``'s connection accepted (users are unique per test)."""
        for server in self.servers:
            if f'/api/ws?user_id={user}" [accepted]' in server.logs():
                return server
        return None


@pytest.fixture(scope="module")
def deployment(postgres: PostgresDatabases) -> Iterator[Deployment]:
    with closing(
        Deployment(postgres.create(f"deploy_{int(time.monotonic() * 1000) % 10**9}")).start()
    ) as made:
        yield made


async def opened(url: str, **kwargs: Any) -> Client | int | None:
    """A connection acknowledged (the client), or the code it was closed with before that."""
    client = await Client.connect(url, **kwargs)
    try:
        await client.expect("connection", timeout=10)
    except websockets.ConnectionClosed:
        return client.connection.close_code
    return client


async def test_per_address_limits_and_logs_see_each_real_client(deployment: Deployment) -> None:
    url = deployment.front.ws_url
    held: list[Client] = []
    try:
        for address in ("127.0.0.2", "127.0.0.3"):
            for i in range(PER_ADDRESS):
                client = await opened(f"{url}?user_id=lim-{address}-{i}", **source(address))
                assert isinstance(client, Client), f"{address}: connection {i} refused with {client}"
                held.append(client)
        # .2 is at its limit, wherever nginx sends the next one
        over = await opened(f"{url}?user_id=lim-over", **source("127.0.0.2"))
        assert over == 4429
        # a client cannot take another's address (or escape its own) by sending X-Forwarded-For: nginx
        # appends what it saw, and the instances take the right-most address they do not trust
        forged = await opened(f"{url}?user_id=lim-forged", **source("127.0.0.4", "127.0.0.2"))
        assert isinstance(forged, Client)
        held.append(forged)

        async def logged() -> bool:
            logs = deployment.logs()
            return "refused a connection of lim-over from 127.0.0.2" in logs and all(
                f'{address}:0 - "WebSocket /api/ws?user_id=lim-{address}-{i}" [accepted]' in logs
                for address in ("127.0.0.2", "127.0.0.3")
                for i in range(PER_ADDRESS)
            )

        await until(logged, timeout=10, what="the clients' own addresses in the logs")
        logs = deployment.logs()
        assert '127.0.0.4:0 - "WebSocket /api/ws?user_id=lim-forged" [accepted]' in logs
        assert NGINX_ADDRESS not in logs  # never nginx's address
    finally:
        for client in held:
            await client.close()


async def publish(
    http: httpx.AsyncClient, front: str, ticker: str, price: float, admin: dict[str, str]
) -> int:
    response = await http.post(
        f"{front}/api/ws/broadcast/price", json={"ticker": ticker, "price": price}, headers=admin
    )
    assert response.status_code == 200, response.text
    return int(response.json()["seq"])


async def test_a_client_resumes_by_since_on_the_other_instance(deployment: Deployment) -> None:
    ticker, url, front = "RSUM", deployment.front.ws_url, deployment.front.url
    admin = deployment.servers[0].admin
    async with httpx.AsyncClient(timeout=10) as http:
        await publish(http, front, ticker, 10.0, admin)  # a ticker nobody published is refused on subscribe
        first = await opened(f"{url}?user_id=resume-0", **source("127.0.0.5"))
        assert isinstance(first, Client)
        _, (history,) = await first.subscribe("ticker", ticker)
        for price in (11.0, 12.0):
            await publish(http, front, ticker, price, admin)
        seen = [m["seq"] for m in history["messages"] + await first.collect("price_update", 2)]
        assert seen == [1, 2, 3]
        await first.close()
        on, _ = await until(partial(deployment.serving, "resume-0"), timeout=10, what="resume-0 in a log")
        missed = [await publish(http, front, ticker, price, admin) for price in (13.0, 14.0)]
        assert missed == [4, 5]
        # reconnect until nginx picks the other instance (it balances: this takes one or two tries)
        for attempt in range(1, 21):
            user = f"resume-{attempt}"
            again = await opened(f"{url}?user_id={user}", **source("127.0.0.5"))
            assert isinstance(again, Client)
            there, _ = await until(partial(deployment.serving, user), timeout=10, what=f"{user} in a log")
            if there is not on:
                break
            await again.close()
        else:
            raise AssertionError("nginx sent 20 connections in a row to the same instance")
        _, (history,) = await again.subscribe("ticker", ticker, since=seen[-1])
        assert history["recovered"] is True
        assert [m["seq"] for m in history["messages"]] == [4, 5]
        assert [m["price"] for m in history["messages"]] == [13.0, 14.0]
        await publish(http, front, ticker, 15.0, admin)
        live = await again.expect("price_update")
        assert live["seq"] == 6
        await again.close()


class Dashboard:
    """One user's dashboard through nginx from an address of its own: prices of one ticker and the user's
    alert triggers. After any close (1001 from an instance going away, a refusal, nginx's 502 while no
    instance answers) it reconnects and resubscribes every stream with ``since`` = the last seq it holds."""

    def __init__(self, url: str, user: str, address: str, ticker: str) -> None:
        self.url, self.user, self.address, self.ticker = url, user, address, ticker
        self.seqs: dict[str, list[int]] = {}  # stream -> seq of every message received, in order
        self.alert_ids: list[str] = []  # alert_id of every trigger on the user's own stream
        self.closes: list[int | None] = []  # close codes of the connections that ended
        self.connected = asyncio.Event()

    def since(self, stream: str) -> int:
        seqs = self.seqs.get(stream)
        return seqs[-1] if seqs else 0

    def take(self, message: dict[str, Any]) -> None:
        if message.get("type") == "history":
            for item in message["messages"]:
                self.take(item)
            return
        stream, seq = message.get("channel"), message.get("seq")
        if stream is None or seq is None:
            return
        self.seqs.setdefault(stream, []).append(seq)
        if stream == f"alerts:user:{self.user}":
            self.alert_ids.append(message["alert_id"])

    async def run(self) -> None:
        own = f"alerts:user:{self.user}"
        while True:
            try:
                client = await Client.connect(f"{self.url}?user_id={self.user}", **source(self.address))
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                await asyncio.sleep(0.2)  # no instance reachable through nginx right now
                continue
            try:
                await client.send(
                    {
                        "type": "subscribe",
                        "channel": "ticker",
                        "ticker": self.ticker,
                        "since": self.since(f"ticker:{self.ticker}"),
                    }
                )
                await client.send(
                    {
                        "type": "subscribe",
                        "channel": "alerts",
                        "since": {"alerts": self.since("alerts"), own: self.since(own)},
                    }
                )
                while True:
                    message = json.loads(await client.connection.recv())
                    if message.get("type") == "history" and message["channel"] == own:
                        self.connected.set()  # subscribed to everything
                    self.take(message)
            except websockets.ConnectionClosed:
                self.closes.append(client.connection.close_code)
            finally:
                await client.close()
            await asyncio.sleep(0.1)


async def test_a_rolling_restart_loses_and_repeats_nothing(deployment: Deployment) -> None:
    ticker, threshold = "ROLL", 100.0
    a, b = deployment.servers
    front = deployment.front
    addresses = [f"127.0.0.{n}" for n in range(2, 8)]  # one dashboard per address: limits never interfere
    async with httpx.AsyncClient(timeout=10) as http:
        rules: dict[str, int] = {}
        for n in range(len(addresses)):
            user = f"roll-{n}"
            body = {
                "ticker": ticker,
                "kind": "breakout",
                "threshold": threshold,
                "rearm": "recross",
                "session": "any",
            }
            response = await http.post(
                f"{front.url}/api/alerts/rules", json=body, headers={"X-User-Id": user}
            )
            assert response.status_code == 201, response.text
            rules[user] = int(response.json()["id"])
        published = 0
        publishing = True

        async def prices() -> None:
            """99, 101, 99 … (a crossing every other price) to whichever instance answers, directly: the
            price source is internal, not a user behind nginx."""
            nonlocal published
            turn = 0
            while publishing:
                price = 99.0 if published % 2 == 0 else 101.0
                for server in (a, b) if turn % 2 == 0 else (b, a):
                    try:
                        response = await http.post(
                            f"{server.url}/api/ws/broadcast/price",
                            json={"ticker": ticker, "price": price},
                            headers=server.admin,
                        )
                    except httpx.TransportError:
                        continue  # this one is restarting: the other
                    if response.status_code == 200:
                        published += 1
                        break
                turn += 1
                await asyncio.sleep(0.15)

        dashboards: list[Dashboard] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            feeder = asyncio.create_task(prices())
            # the first price before the dashboards subscribe: a ticker nobody published is refused
            await until(_at_least(lambda: published, 1), timeout=20, what="the first price")
            dashboards = [Dashboard(front.ws_url, f"roll-{n}", a_, ticker) for n, a_ in enumerate(addresses)]
            tasks = [asyncio.create_task(d.run()) for d in dashboards]
            async with asyncio.timeout(30):
                await asyncio.gather(*(d.connected.wait() for d in dashboards))
            await until(_at_least(lambda: published, 5), timeout=20, what="prices flowing")
            for server in (a, b):  # the rolling restart
                # in threads: the dashboards and the prices go on meanwhile
                await asyncio.to_thread(server.stop, signal.SIGTERM)  # graceful: its clients get 1001
                await asyncio.to_thread(server.start, 60)
                before = published
                await until(_at_least(lambda: published, before + 5), timeout=20, what="prices after restart")
            publishing = False
            await feeder
            history = await deployment.redis.history(f"ticker:{ticker}")
            last = history[-1]["seq"]
            assert [m["seq"] for m in history] == list(range(1, last + 1))
            assert last >= published  # every acknowledged price was published (a retry may add one)
            fired = crossings([m["price"] for m in history], threshold)
            assert fired >= 10

            async def delivered() -> bool:
                for task in tasks:
                    if task.done():
                        task.result()  # a dashboard that crashed: say why now, not at the timeout
                return all(
                    d.since(f"ticker:{ticker}") >= last and len(d.alert_ids) >= fired for d in dashboards
                )

            await until(delivered, timeout=60, what="every price and trigger at every dashboard")
            await asyncio.sleep(1.0)  # anything sent twice would be there by now
        except BaseException:
            summary = [(d.user, d.since(f"ticker:{ticker}"), len(d.alert_ids), d.closes) for d in dashboards]
            print(f"dashboards: {summary}\n{deployment.logs()[-8000:]}\n{front.logs()[-3000:]}")
            raise
        finally:
            publishing = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        print(
            f"rolling restart: {last} prices, {fired} triggers a user, closes {[d.closes for d in dashboards]}"
        )
        for d in dashboards:
            assert d.seqs[f"ticker:{ticker}"] == list(range(1, last + 1)), (
                d.user
            )  # every price, once, in order
            assert d.alert_ids == keys(rules[d.user], fired), d.user  # every trigger exactly once
            own = [m["alert_id"] for m in await deployment.redis.history(f"alerts:user:{d.user}")]
            assert own == keys(rules[d.user], fired)
            # each instance went away under it once at least: it resumed on the other
            assert 1001 in d.closes, (d.user, d.closes)


def _at_least(value: Any, target: int) -> Any:
    async def reached() -> bool:
        return bool(value() >= target)

    return reached
