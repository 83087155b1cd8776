"""``legend serve --workers N``: N processes on one port, each an instance on the Redis backplane."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from legend.capacity import max_workers
from legend.settings import MAX_WORKERS
from tests.cluster.conftest import close_code, pattern, stats, until
from tests.support.redis_server import RedisServer
from tests.support.server import LegendServer, free_port, run_legend, to_toml
from tests.support.wsclient import connect


def test_more_than_one_worker_on_the_memory_backplane_is_refused_naming_redis_url(tmp_path: object) -> None:
    done = run_legend("serve", "--workers", "2", "--port", str(free_port()))
    assert done.returncode == 2
    assert "redis.url" in done.stderr and "server.workers = 2" in done.stderr


def test_the_worker_count_is_checked_like_any_setting(tmp_path: os.PathLike[str]) -> None:
    config = os.path.join(tmp_path, "legend.toml")
    with open(config, "w", encoding="utf-8") as file:
        file.write(to_toml({"server": {"workers": 0}}))
    done = run_legend("serve", "--config", config)
    assert done.returncode == 2 and "$.server.workers" in done.stderr


def worker_pids(server: LegendServer) -> list[int]:
    assert server.process is not None
    children = f"/proc/{server.process.pid}/task/{server.process.pid}/children"
    with open(children, encoding="ascii") as file:
        pids = [int(pid) for pid in file.read().split()]
    workers = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if b"legend.worker" in file.read():
                    workers.append(pid)
        except FileNotFoundError:
            pass
    return workers


async def test_two_workers_serve_one_port_as_one_cluster_and_a_dead_worker_comes_back() -> None:
    redis = RedisServer().start()
    server = LegendServer(
        {
            "redis": {"url": redis.url, "lease_ttl": 2.0, "interest_ttl": 3.0},
            "server": {"workers": 2},
            "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
        }
    )
    try:
        server.start(timeout=60)
        async with httpx.AsyncClient(timeout=10) as http:
            await until(lambda: _instances(http, server, 2), timeout=30, what="both workers in the cluster")
            clients = [await connect(server.ws_url, user_id=f"w{i}") for i in range(24)]
            for client in clients:
                await client.subscribe("patterns")

            async def spread() -> bool:
                members = (await stats(http, server))["cluster"]["members"]
                counts = [m.get("connections", 0) for m in members.values()]
                return len(counts) == 2 and sum(counts) == 24 and min(counts) > 0

            await until(spread, timeout=15, what="connections on both workers")
            response = await http.post(
                f"{server.url}/api/ws/broadcast/pattern", json=pattern(1), headers=server.admin
            )
            assert response.status_code == 200, response.text
            for client in clients:  # whichever worker holds it, every client gets the one message
                message = await client.expect("pattern_alert")
                assert message["seq"] == response.json()["seq"]
            for client in clients:
                await client.close()

            first = worker_pids(server)
            assert len(first) == 2
            os.kill(first[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = worker_pids(server)
                if len(now) == 2 and first[0] not in now:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"the killed worker was not restarted: {worker_pids(server)}")
            await until(lambda: _health(http, server), timeout=30, what="the port answering after a restart")
        assert server.stop() == 0  # SIGTERM: the supervisor stops its workers and exits cleanly
    finally:
        server.close()
        redis.close()


async def _instances(http: httpx.AsyncClient, server: LegendServer, count: int) -> bool:
    try:
        return bool((await stats(http, server))["cluster"]["instances"] == count)
    except httpx.HTTPError:
        return False


async def _health(http: httpx.AsyncClient, server: LegendServer) -> bool:
    try:
        return (await http.get(f"{server.url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


def free_port_pair() -> int:
    """A port whose next one is free too (for two workers' metrics ports)."""
    for _ in range(50):
        port = free_port()
        if port < 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise AssertionError("no two consecutive free ports")


async def test_each_worker_serves_its_own_metrics_on_its_metrics_port() -> None:
    """On the shared port a scrape reaches one worker at random; ``metrics.port`` gives worker N port + N,
    where only ``GET /metrics`` answers, each with that worker's own figures."""
    redis = RedisServer().start()
    first = free_port_pair()
    server = LegendServer(
        {
            "redis": {"url": redis.url, "lease_ttl": 2.0},
            "server": {"workers": 2},
            "metrics": {"port": first},
            "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
        }
    )
    try:
        server.start(timeout=60)
        async with httpx.AsyncClient(timeout=10) as http:
            await until(lambda: _instances(http, server, 2), timeout=30, what="both workers in the cluster")
            ids = set()
            for port in (first, first + 1):
                base = f"http://127.0.0.1:{port}"
                assert (await http.get(f"{base}/metrics")).status_code == 401
                response = await http.get(f"{base}/metrics", headers=server.admin)
                assert response.status_code == 200
                (info,) = [
                    f.samples[0].labels
                    for f in text_string_to_metric_families(response.text)
                    if f.name == "legend_instance_info"
                ]
                ids.add(info["instance_id"])
                for path in ("/api/ws/stats", "/health", "/dashboard", "/docs/openapi.json"):
                    refused = await http.get(f"{base}{path}", headers=server.admin)
                    assert refused.status_code == 404, path
                    assert refused.json()["detail"] == "this port serves GET /metrics only"
                with pytest.raises(websockets.InvalidStatus) as refused_ws:
                    await websockets.connect(f"ws://127.0.0.1:{port}/api/ws?user_id=x", open_timeout=10)
                assert refused_ws.value.response.status_code == 403
            members = (await stats(http, server))["cluster"]["members"]
            assert ids == set(members)  # one scrape per worker, each worker exactly once
            assert (await http.get(f"{server.url}/metrics", headers=server.admin)).status_code == 200
    finally:
        server.close()
        redis.close()


def test_a_taken_metrics_port_stops_the_start_with_a_settings_error(tmp_path: os.PathLike[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = os.path.join(tmp_path, "legend.toml")
        with open(config, "w", encoding="utf-8") as file:
            file.write(to_toml({"metrics": {"port": port}}))
        done = run_legend("serve", "--config", config, "--port", str(free_port()))
    assert done.returncode == 2
    assert f"legend: settings error: metrics.port: cannot bind 127.0.0.1:{port}" in done.stderr


SLOW_START = str(Path(__file__).parent.parent / "support" / "slow_start")  # its sitecustomize.py


def tree(mark: str) -> list[int]:
    """Every live process whose environment carries ``TEST_TREE=mark``: a supervisor and whatever it
    started, found wherever they were reparented (zombies have no environment left, and hold no port)."""
    found = []
    needle = f"TEST_TREE={mark}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    if needle in file.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def marked_tree(
    config: dict[str, Any], env: dict[str, str], wait: bool = False
) -> Iterator[tuple[LegendServer, str]]:
    """A ``--workers`` server on a private Redis whose processes carry a mark (``tree(mark)`` finds them),
    started (waiting until it serves when ``wait``); every process of the tree is killed at the end, whatever happened."""
    redis = RedisServer().start()
    mark = secrets.token_hex(8)
    server = LegendServer({**config, "redis": {"url": redis.url, **config.get("redis", {})}})
    try:
        server.start(timeout=60, extra_env={"TEST_TREE": mark, **env}, wait=wait)
        assert server.process is not None
        yield server, mark
    finally:
        for pid in tree(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.close()
        redis.close()


@pytest.mark.parametrize("when", ["while it starts its workers", "while they serve"])
def test_no_worker_outlives_a_killed_supervisor(when: str) -> None:
    """SIGKILL of the supervisor leaves nothing behind: not while its workers are still starting (each
    interpreter's start is slowed by 3 s, the window before a worker can tie itself to its supervisor),
    nor once they serve. Before, workers killed in that window served on, orphaned, for good."""
    config: dict[str, Any] = {
        "redis": {"lease_ttl": 2.0},
        "server": {"workers": 2},
        "realtime": {"update_interval": 3600, "after_hours_interval": 3600},
    }
    slow = when == "while it starts its workers"
    env = {"PYTHONPATH": SLOW_START, "TEST_SLOW_START": "3"} if slow else {}
    with marked_tree(config, env, wait=not slow) as (server, mark):
        assert server.process is not None
        supervisor = server.process.pid
        deadline = time.monotonic() + 60
        while len(tree(mark)) < 3:  # the supervisor and (at least) two children
            assert time.monotonic() < deadline and server.process.poll() is None, server.logs()
            time.sleep(0.02)
        server.stop(signal.SIGKILL)
        killed = time.monotonic()
        while left := [pid for pid in tree(mark) if pid != supervisor]:
            assert time.monotonic() - killed < 15, f"orphaned workers {left} still run:\n{server.logs()}"
            time.sleep(0.1)
        assert not listening(server.port), "the port still answers"


def test_sigterm_while_the_workers_start_stops_everything_promptly() -> None:
    env = {"PYTHONPATH": SLOW_START, "TEST_SLOW_START": "30"}
    with marked_tree({"server": {"workers": 2}}, env) as (server, mark):
        assert server.process is not None
        deadline = time.monotonic() + 60
        while len(tree(mark)) < 2:
            assert time.monotonic() < deadline and server.process.poll() is None, server.logs()
            time.sleep(0.02)
        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=15) == 0
        assert time.monotonic() - started < 5, "the supervisor took its time"
        assert tree(mark) == [], "a worker survived its supervisor's SIGTERM"


def _over_the_machine() -> int:
    most, _ = max_workers()
    assert most < MAX_WORKERS, "a machine this large cannot show the machine bound"
    return most + 1


@pytest.mark.parametrize(
    ("count", "refusal"),
    [
        (str(10_000), "legend: settings error: --workers: Expected `int` <= 256"),
        (
            "machine",
            "legend: settings error: server.workers = {count} is more than this machine can run: at most ",
        ),
    ],
    ids=["over-256", "over-the-machine"],
)
def test_more_workers_than_the_machine_holds_is_one_line_and_no_side_effect(
    tmp_path: Path, count: str, refusal: str
) -> None:
    count = str(_over_the_machine()) if count == "machine" else count
    database = tmp_path / "legend.db"
    config = tmp_path / "legend.toml"
    config.write_text(to_toml({"database": {"url": f"sqlite+aiosqlite:///{database}"}}), encoding="utf-8")
    port = free_port()
    started = time.monotonic()
    done = run_legend("serve", "--config", str(config), "--workers", count, "--port", str(port))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(refusal.format(count=count)), line
    assert count == "10000" or "per usable CPU" in line
    assert not database.exists(), "the database was migrated before the refusal"
    assert not listening(port)
    assert time.monotonic() - started < 30


async def test_a_killed_workers_users_reconnect_to_the_other_at_once() -> None:
    """One connection per user: the users of a worker that is killed reconnect to the other worker
    within a second or two, not once their dead connections' registrations expire (interest_ttl, 15 s
    here as by default): the supervisor evicts the dead worker's instance from the cluster at once."""
    redis = RedisServer().start()
    server = LegendServer(
        {
            "redis": {"url": redis.url, "lease_ttl": 2.0, "interest_ttl": 15.0},
            "server": {"workers": 2},
            "realtime": {
                "update_interval": 3600,
                "after_hours_interval": 3600,
                "max_connections_per_user": 1,
            },
        }
    )
    try:
        server.start(timeout=60)
        async with httpx.AsyncClient(timeout=10) as http:
            await until(lambda: _instances(http, server, 2), timeout=30, what="both workers in the cluster")
            clients = {f"k{i}": await connect(server.ws_url, user_id=f"k{i}") for i in range(16)}

            async def spread() -> bool:
                members = (await stats(http, server))["cluster"]["members"]
                counts = [m.get("connections", 0) for m in members.values()]
                return len(counts) == 2 and sum(counts) == 16 and min(counts) > 0

            await until(spread, timeout=15, what="connections on both workers")
            victim = worker_pids(server)[0]
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()

            async def back(user: str) -> tuple[float, int] | None:
                """None for a user on the surviving worker; else (seconds to be admitted again, 4429s)."""
                try:
                    await asyncio.wait_for(clients[user].connection.wait_closed(), 3)
                except TimeoutError:
                    return None
                refused = 0
                while time.monotonic() - killed < 30:
                    try:
                        code = await close_code(f"{server.ws_url}?user_id={user}")
                    except (websockets.InvalidHandshake, OSError):
                        code = 0  # caught in the dead worker's backlog as it went: try again
                    if code is None:
                        break
                    assert code in (0, 4429), code
                    refused += code == 4429
                    await asyncio.sleep(0.05)
                return time.monotonic() - killed, refused

            outcomes = await asyncio.gather(*map(back, clients))
            dropped = {user: got for user, got in zip(clients, outcomes, strict=True) if got is not None}
            assert dropped, "no connection was on the killed worker"
            slowest = max(seconds for seconds, _ in dropped.values())
            assert slowest < 2.5, f"locked out for {slowest:.1f} s: {dropped}"
            for user, client in clients.items():
                if user not in dropped:
                    await client.close()
    finally:
        server.close()
        redis.close()
