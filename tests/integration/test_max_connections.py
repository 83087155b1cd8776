"""How many connections one process holds (server.max_connections) over real servers: past the cap a
handshake gets HTTP 503 with Retry-After, /ready says 503 "full", and room comes back when one leaves; a cap
beyond the hard descriptor limit stops the start; the soft limit is raised to the hard one at start."""

from __future__ import annotations

import asyncio
import re
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from legend.descriptors import RESERVE
from tests.integration.conftest import QUIET
from tests.support.server import LegendServer, merge
from tests.support.wsclient import connect


def nofile(soft: int, hard: int) -> Callable[[], None]:
    """A ``preexec_fn`` that gives the child these descriptor limits (lowering needs no privilege)."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def capped() -> Iterator[LegendServer]:
    with LegendServer(merge(QUIET, {"server": {"max_connections": 3}})) as server:
        yield server


def ready(server: LegendServer) -> httpx.Response:
    return httpx.get(f"{server.url}/ready", timeout=5)


def metric(server: LegendServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", headers=server.admin, timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def test_the_connection_past_max_connections_gets_503_and_room_comes_back(capped: LegendServer) -> None:
    assert ready(capped).status_code == 200
    clients = [await connect(capped.ws_url, user_id=f"c{i}") for i in range(3)]
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{capped.ws_url}?user_id=c3", open_timeout=10)
    response = refused.value.response
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "server full: at most 3 connections" in response.body.decode()
    full = ready(capped)
    assert full.status_code == 503 and full.json()["status"] == "full", full.text
    stats = capped.stats()
    assert stats["refused_full"] == 1 and stats["max_connections"] == 3
    assert metric(capped, "legend_connections_refused_full_total") == 1
    assert metric(capped, "legend_connections_max") == 3

    await clients[0].close()
    deadline = time.monotonic() + 10
    while ready(capped).status_code != 200:  # its handler ends once the close handshake is done
        assert time.monotonic() < deadline, "still full 10 s after a connection left"
        await asyncio.sleep(0.05)
    again = await connect(capped.ws_url, user_id="c3")
    await again.send({"type": "ping"})
    await again.expect("pong")
    assert ready(capped).status_code == 503  # three again
    for client in (*clients[1:], again):
        await client.close()


async def test_refused_handshakes_give_their_place_back(capped: LegendServer) -> None:
    """An origin refused or a credential refused ends the handler: it holds no place afterwards."""
    for _ in range(5):
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(capped.ws_url, origin="http://elsewhere.example", open_timeout=10)  # type: ignore[arg-type]
    clients = [await connect(capped.ws_url, user_id=f"r{i}") for i in range(3)]
    for client in clients:
        await client.close()


def test_a_max_connections_over_the_hard_limit_stops_the_start() -> None:
    server = LegendServer(merge(QUIET, {"server": {"max_connections": 1000}}))
    try:
        server.start(wait=False, preexec_fn=nofile(1024, 1024))
        assert server.process is not None
        assert server.process.wait(60) == 2
        logs = server.logs()
        line = (
            f"legend: settings error: server.max_connections = 1000 needs {1000 + RESERVE} file descriptors"
        )
        assert line in logs and "the hard limit (RLIMIT_NOFILE) is 1024" in logs, logs
        assert "LimitNOFILE" in logs and "--ulimit" in logs
        assert len(logs.strip().splitlines()) == 1, logs  # one line, no traceback
    finally:
        server.close()


def test_the_soft_limit_is_raised_to_the_hard_one_and_the_cap_follows_it() -> None:
    server = LegendServer(QUIET)
    try:
        server.start(preexec_fn=nofile(256, 2048))
        assert server.process is not None
        limits = Path(f"/proc/{server.process.pid}/limits").read_text(encoding="ascii")
        found = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.MULTILINE)
        assert found and found.groups() == ("2048", "2048"), limits
        assert server.stats()["max_connections"] == 2048 - RESERVE  # 0: the limit minus the reserve
    finally:
        server.close()
