"""``GET /metrics`` of a real ``legend serve``, scraped as Prometheus does and parsed with the official
client's parser: the admin token guards it unless ``metrics.public``, and the figures follow what real
WebSocket clients do. The sample Grafana dashboard queries only metrics a real scrape has."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.redis_server import RedisServer
from tests.support.server import LegendServer, free_port, merge
from tests.support.wsclient import connect

from .conftest import QUIET

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: LegendServer, **headers: str) -> Samples:
    response = httpx.get(f"{server.url}/metrics", headers={**server.admin, **headers}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str) -> float:
    """A counter summed over all its label values."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_metrics_need_the_admin_token(server: LegendServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdDp0ZXN0"}):
        response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["detail"] == "admin token required: send Authorization: Bearer <token>"
        assert "legend_" not in response.text
    assert value(scrape(server), "legend_backplane_up", backend="memory") == 1


def test_openmetrics_when_the_scraper_asks_for_it(server: LegendServer) -> None:
    response = httpx.get(
        f"{server.url}/metrics",
        headers={**server.admin, "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    assert "legend_connections_opened_total" in response.text


def test_metrics_are_documented_in_openapi_under_their_own_tag(server: LegendServer) -> None:
    schema = httpx.get(f"{server.url}/docs/openapi.json", timeout=10).json()
    operation = schema["paths"]["/metrics"]["get"]
    assert operation["tags"] == ["metrics"] and operation["security"] == [{"adminToken": []}]
    assert "metrics" in {tag["name"] for tag in schema["tags"]}


def test_the_background_tasks_are_in_the_stats_and_the_metrics(
    server: LegendServer, admin: httpx.Client
) -> None:
    tasks = admin.get("/api/ws/stats").json()["tasks"]
    loops = {"sweeper", "streamer", "alert-delivery", "alert-evaluation"}
    assert loops <= set(tasks), tasks
    for name in loops:
        assert tasks[name] == {"state": "running", "restarts": 0, "failures": 0, "last_error": None}
    samples = scrape(server)
    for name in loops:
        assert value(samples, "legend_task_state", task=name, state="running") == 1
        assert value(samples, "legend_task_state", task=name, state="failed") == 0
        assert value(samples, "legend_task_restarts_total", task=name) == 0
        assert value(samples, "legend_task_failures_total", task=name) == 0


async def test_figures_follow_real_clients(server: LegendServer, admin: httpx.Client) -> None:
    before = scrape(server)
    assert value(before, "legend_connections") == 0
    clients = [await connect(server.ws_url, user_id=f"metrics{i}") for i in range(3)]
    for client in clients[:2]:
        await client.subscribe("ticker", "MTRX")
    await clients[2].subscribe("patterns")
    await clients[0].subscribe("ticker", "MTRY")
    during = scrape(server)
    assert value(during, "legend_connections") == 3
    assert value(during, "legend_subscriptions", channel="ticker") == 3
    assert value(during, "legend_subscribed_connections", channel="ticker") == 2
    assert value(during, "legend_subscriptions", channel="patterns") == 1
    assert value(during, "legend_tickers_watched") == 2
    opened = value(during, "legend_connections_opened_total") - value(
        before, "legend_connections_opened_total"
    )
    assert opened == 3
    assert (
        total(during, "legend_messages_received_total") - total(before, "legend_messages_received_total") == 4
    )

    for i in range(5):
        p = 100 + i
        body = {"ticker": "MTRX", "price": p, "change": 1, "change_percent": 1, "volume": 10}
        assert (
            admin.post(
                "/api/ws/broadcast/price", json=body | {"high": p, "low": p, "open_price": p}
            ).status_code
            == 200
        )
    for client in clients[:2]:
        await client.expect(lambda m: m.get("type") == "price_update" and m.get("price") == 104)
    after = scrape(server)
    sent = total(after, "legend_messages_sent_total") - total(during, "legend_messages_sent_total")
    assert sent >= 2  # at least the last price to each of the two subscribers (earlier ones may conflate)
    delivered = value(after, "legend_fanout_messages_total") - value(during, "legend_fanout_messages_total")
    assert (
        delivered >= 5
    )  # the broadcasts, and the quote poller's first quotes of MTRX and MTRY if they came since
    published = value(after, "legend_messages_published_total") - value(
        during, "legend_messages_published_total"
    )
    assert published >= 5
    assert value(after, "legend_outbox_messages") >= 0

    for client in clients:
        await client.close()
    await asyncio.sleep(0)
    until(lambda: value(scrape(server), "legend_connections") == 0)
    closed = scrape(server)
    assert value(closed, "legend_subscriptions", channel="ticker") == 0
    assert value(closed, "legend_tickers_watched") == 0


def test_a_rejected_handshake_is_counted(server: LegendServer) -> None:
    before = value(scrape(server), "legend_auth_rejected_total")
    response = httpx.get(
        f"{server.url}/api/ws",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Origin": "https://evil.example",
        },
        timeout=10,
    )
    assert response.status_code == 403
    assert value(scrape(server), "legend_auth_rejected_total") == before + 1


@pytest.fixture(scope="module")
def public_server() -> Iterator[LegendServer]:
    with LegendServer(merge(QUIET, {"metrics": {"public": True}})) as srv:
        yield srv


def test_metrics_public_opens_the_endpoint_only(public_server: LegendServer) -> None:
    response = httpx.get(f"{public_server.url}/metrics", timeout=10)
    assert response.status_code == 200 and "legend_connections " in response.text
    assert httpx.get(f"{public_server.url}/api/ws/stats", timeout=10).status_code == 401


# Metrics the dashboard charts that the domain does not keep yet (their counters are the lead's to add):
# each must be absent from a real scrape, so that the list shrinks as they arrive.
PENDING: set[str] = set()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[LegendServer]:
    """An instance on a private Redis, so the scrape has the Redis backplane's figures too; quotes twice a
    second, so the provider's are there."""
    redis = RedisServer().start()
    srv = LegendServer(
        {"redis": {"url": redis.url}, "realtime": {"update_interval": 0.5, "after_hours_interval": 0.5}}
    )
    try:
        yield srv.start()
    finally:
        srv.close()
        redis.close()


def queried_metrics(dashboard: dict[str, object]) -> set[str]:
    """Every metric name in the dashboard's PromQL expressions (panels and templating)."""
    text = json.dumps(dashboard)
    expressions = re.findall(r'"(?:expr|query|definition)": "((?:[^"\\]|\\.)*)"', text)
    names: set[str] = set()
    for expression in expressions:
        names.update(re.findall(r"\b((?:legend|process|python)_[a-z0-9_]+)\b", expression))
    return names


async def test_the_grafana_dashboard_is_importable_and_queries_only_real_metrics(
    redis_server: LegendServer,
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36 and dashboard["title"] and dashboard["uid"]
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])

    client = await connect(redis_server.ws_url)
    await client.subscribe("ticker", "AAPL")
    await client.expect("price_update", timeout=15)
    until(
        lambda: (
            ("legend_provider_last_fetch_timestamp_seconds", frozenset({("provider", "simulated")}))
            in scrape(redis_server)
        )
    )
    samples = scrape(redis_server)
    await client.close()
    scraped = {name for name, _ in samples}
    # a histogram is queried by its _bucket, _sum and _count series; counters by their _total
    queried = queried_metrics(dashboard)
    missing = sorted(queried - scraped - PENDING)
    assert not missing, f"the dashboard queries metrics that a scrape does not have: {missing}"
    assert queried >= PENDING
    arrived = sorted(PENDING & scraped)
    assert not arrived, f"now in the scrape, remove from PENDING: {arrived}"
    assert value(samples, "legend_backplane_up", backend="redis") == 1
    documented = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in scraped}  # a histogram is one family
    undocumented = sorted(n for n in families if n.startswith("legend_") and f"`{n}`" not in documented)
    assert not undocumented, f"metrics missing from docs/operations.md: {undocumented}"
    assert {"legend_connections", "legend_subscriptions", "legend_alert_evaluation_lag_seconds"} <= queried


def test_a_single_server_serves_metrics_on_metrics_port_too() -> None:
    metrics_port = free_port()
    srv = LegendServer(merge(QUIET, {"metrics": {"port": metrics_port}})).start()
    try:
        base = f"http://127.0.0.1:{metrics_port}"
        response = httpx.get(f"{base}/metrics", headers=srv.admin, timeout=10)
        assert response.status_code == 200 and "legend_connections " in response.text
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401  # the same rule as anywhere
        assert httpx.get(f"{base}/health", timeout=10).status_code == 404
        assert httpx.get(f"{srv.url}/health", timeout=10).status_code == 200  # the server's port is as ever
    finally:
        srv.close()


def test_metrics_port_may_not_take_the_server_port() -> None:
    port = free_port()
    srv = LegendServer({"metrics": {"port": port}}, port=port)
    try:
        with pytest.raises(RuntimeError) as failed:
            srv.start()
        assert (
            f"legend: settings error: metrics.port = {port} with server.workers = 1 takes server.port"
            in str(failed.value)
        )
    finally:
        srv.close()
