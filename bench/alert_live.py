"""Alert triggers end to end under a burst: a real server, 100,000 armed rules on one ticker, 1,000 prices a
second, and the owners of the rules connected; from each crossing price's publish to its trigger's
arrival at the owner's socket.

    python bench/bench_alert_eval.py live [--rules 100000] [--rate 1000] [--seconds 10] [--backend memory]

What it does:

1. Migrates a fresh SQLite database (or ``--database-url``) and inserts ``--rules`` armed rules on ticker
   BENCH in one transaction, spread over ``--users`` users; thresholds uniform within ``--spread`` of the
   start price, four price kinds, a fifth of them re-arming on every crossing (``recross``), the rest firing
   once.
2. Starts ``legend serve`` from ``--legend-root`` (default this checkout) on the in-memory backplane, or on
   a private ``redis-server`` with ``--backend redis``; connects one WebSocket client per user, each
   subscribed to its ``alerts``.
3. Publishes a seeded random walk at ``--rate`` prices a second for ``--seconds`` over
   ``/api/ws/broadcast/price`` (a few keep-alive connections, paced). Each price is unique (a tiny
   per-step offset), so a trigger's ``current_price`` says which publish it came from.
4. Waits until every stored trigger has arrived (or ``--drain`` seconds), then prints: prices
   acknowledged, triggers stored (counted in the database), delivered (distinct ``alert_id`` received) and
   delivered twice; p50, p99 and max from the crossing price's publish to the trigger's arrival; server CPU.

Run it against another checkout (``--legend-root``) for the figures of another version on the same
machine and load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout.procs import (  # noqa: E402
    ServerProcess,
    child_env,
    cpu_seconds,
    free_port,
    raise_fd_limit,
    start_redis,
    wait_redis,
)
from bench.fanout.publisher import HttpLane  # noqa: E402

TICKER = "BENCH"
START = 100.0
ADMIN = "bench"
KINDS = ("price_above", "price_below", "breakout", "breakdown")


def insert_rules(database: Path, rules: int, users: int, spread: float, seed: int) -> None:
    """``rules`` armed rules in one transaction (the schema is the checkout's, migrated before)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    rows = []
    for n in range(rules):
        rearm = "recross" if n % 5 == 0 else "once"
        threshold = round(START + rng.uniform(-spread, spread), 2)
        rows.append((f"user{n % users}", TICKER, KINDS[n % 4], threshold, rearm, now, now))
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO alert_rules (user_id, ticker, kind, threshold, rearm, cooldown_seconds, armed, side,"
            " generation, last_triggered_at, version, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, NULL, 1, NULL, 0, NULL, 1, ?, ?)",
            rows,
        )


def walk(count: int, seed: int) -> list[float]:
    """A random walk from START, each price unique (a tiny per-step offset) so a trigger names its price."""
    rng = random.Random(seed)
    price, out = START, []
    for i in range(count):
        price = max(1.0, price + rng.gauss(0, 0.03))
        out.append(round(price, 2) + (i + 1) * 1e-7)
    return out


def settings(root: Path, port: int, database: Path, redis_url: str | None, users: int) -> str:
    """The server's TOML: quiet quote poller (its provider knows no BENCH), enough connections from one
    address for every user, the alert log sized for the run."""
    known = (root / "legend" / "settings.py").read_text()
    realtime = ["update_interval = 3600", "after_hours_interval = 3600", "stale_after = 3600"]
    if "max_connections_per_ip" in known:  # a checkout with connection limits: room for the users
        realtime += [f"max_connections_per_ip = {users * 2}", "connect_rate_per_ip = 0"]
    lines = [
        "[server]",
        f"port = {port}",
        'log_level = "warning"',
        "[security]",
        f'admin_token = "{ADMIN}"',
        "[realtime]",
        *realtime,
        "[quotes]",
        'provider = "replay"',
        "[database]",
        f'url = "sqlite+aiosqlite:///{database}"',
        "[alerts]",
        "max_rules_per_user = 100000",
    ]
    if redis_url:
        lines += ["[redis]", f'url = "{redis_url}"']
    return "\n".join(lines) + "\n"


class _Trigger(msgspec.Struct):
    type: str
    alert_id: str = ""
    current_price: float = 0.0


def _clients(port: int, users: list[str], conn: Connection) -> None:
    """A client process: one connection per user, subscribed to alerts; records (arrival, current_price)
    per alert_id until the parent says stop, then sends them back."""
    decode = msgspec.json.Decoder(_Trigger).decode

    async def main() -> None:
        received: dict[str, list[tuple[float, float]]] = {}
        sockets = []
        for user in users:
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/ws?user_id={user}", max_queue=None)
            await ws.send(json.dumps({"type": "subscribe", "channel": "alerts"}))
            sockets.append(ws)

        async def read(ws: Any) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    if '"alert_trigger"' in raw[:40]:
                        message = decode(raw)
                        received.setdefault(message.alert_id, []).append((time.time(), message.current_price))

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        conn.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        for reader in readers:
            reader.cancel()
        conn.send(received)

    asyncio.run(main())


async def publish(port: int, prices: list[float], rate: float, lanes: int) -> dict[float, float]:
    """Every price at its scheduled time (``lanes`` keep-alive connections); returns price -> send time."""
    sent: dict[float, float] = {}
    start = time.monotonic() + 0.2
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    for i, price in enumerate(prices):
        queue.put_nowait((i, price))
    headers = {"Authorization": f"Bearer {ADMIN}"}

    async def lane() -> None:
        # A raw keep-alive HTTP/1.1 connection (the fan-out bench's): httpx cost the publisher about 2 ms
        # of CPU a request, so 8 lanes of it offered 500 prices a second, not the 1,000 asked for.
        connection = await HttpLane.open(port, "/api/ws/broadcast/price", headers)
        try:
            while not queue.empty():
                i, price = queue.get_nowait()
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = {"ticker": TICKER, "price": price, "high": price, "low": price, "open_price": price}
                sent[price] = time.time()
                status, answer = await connection.post(json.dumps(body).encode())
                if status != 200:
                    raise RuntimeError(f"broadcast refused: {status} {answer[:200]!r}")
        finally:
            connection.close()

    await asyncio.gather(*(lane() for _ in range(lanes)))
    return sent


async def publish_redis(url: str, prices: list[float], rate: float) -> dict[float, float]:
    """Every price at its scheduled time as another program would send it: ``PUBLISH price_updates`` in
    the specification's format (the server sequences it, logs it, evaluates it)."""
    import redis.asyncio as aioredis

    sent: dict[float, float] = {}
    client = aioredis.from_url(url)
    start = time.monotonic() + 0.2
    try:
        for i, price in enumerate(prices):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            message = {"type": "price_update", "ticker": TICKER, "price": price, "volume": i + 1}
            sent[price] = time.time()
            await client.publish("price_updates", json.dumps(message))
    finally:
        await client.aclose()
    return sent


def stored_triggers(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0])


async def run(args: argparse.Namespace, root: Path, work: Path) -> dict[str, Any]:
    database = work / "legend.db"
    redis = None
    if args.backend == "redis":
        redis = start_redis("redis", work)
        wait_redis(redis)
    port = free_port()
    config = work / "legend.toml"
    config.write_text(
        settings(root, port, database, f"redis://127.0.0.1:{redis.port}" if redis else None, args.users)
    )
    env = child_env(root)
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legend", "db", "upgrade", "--config", str(config), cwd=root, env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if await migrate.wait() != 0:
        raise RuntimeError("migration failed")
    insert_rules(database, args.rules, args.users, args.spread, args.seed)
    server = ServerProcess(
        "legend", [sys.executable, "-m", "legend", "serve", "--config", str(config)], port, work, env
    )
    clients: list[tuple[Any, Connection]] = []
    try:
        server.wait_ready()
        context = multiprocessing.get_context("fork")
        for part in range(args.client_processes):
            ours, theirs = context.Pipe()
            users = [f"user{u}" for u in range(part, args.users, args.client_processes)]
            process = context.Process(target=_clients, args=(port, users, theirs), daemon=True)
            process.start()
            clients.append((process, ours))
        for _, conn in clients:
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "ready"
        prices = walk(int(args.rate * args.seconds), args.seed + 1)
        # The first price only tells every new rule which side it is on (a write per rule, once): that is
        # the set-up, not the burst.
        await publish(port, [START], args.rate, 1)
        learned_in = await _evaluated(port, 1, args.drain)
        cpu_before = cpu_seconds(server.pids())
        began = time.monotonic()
        watch = asyncio.create_task(_watch(port, args.verbose))
        if redis is not None:
            sent = await publish_redis(f"redis://127.0.0.1:{redis.port}", prices, args.rate)
        else:
            sent = await publish(port, prices, args.rate, args.lanes)
        published_for = time.monotonic() - began
        deadline = time.monotonic() + args.drain
        await _published(port, deadline)  # every stored trigger published (and so written out)
        await asyncio.sleep(1.0)  # on its way through the clients' sockets; anything sent twice too
        stored = stored_triggers(database)
        received: dict[str, list[tuple[float, float]]] = {}
        for _, conn in clients:
            conn.send("stop")
            for alert_id, copies in (
                await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            ).items():
                received.setdefault(alert_id, []).extend(copies)
        watch.cancel()
        cpu = cpu_seconds(server.pids()) - cpu_before
        latencies = sorted(
            arrival - sent[price]
            for copies in received.values()
            for arrival, price in copies[:1]
            if price in sent
        )
        return {
            "version": str(root),
            "backend": args.backend,
            "published_by": "PUBLISH price_updates (seed format)"
            if redis is not None
            else "POST /api/ws/broadcast/price",
            "rules": args.rules,
            "users": args.users,
            "rate": args.rate,
            "seconds": args.seconds,
            "published": len(sent),
            "published_for": round(published_for, 2),
            "first_price_learned_in": round(learned_in, 2),
            "stored": stored,
            "delivered": len(received),
            "delivered_twice": sum(1 for copies in received.values() if len(copies) > 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "server_cpu_s": round(cpu, 1),
        }
    finally:
        for process, _ in clients:
            process.kill()
        server.stop()
        if redis is not None:
            redis.stop()


async def _published(port: int, deadline: float) -> None:
    """Until the server has published every trigger it fired, and no more fire (or ``deadline``)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    last = None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while time.monotonic() < deadline:
            alerting = (await client.get("/api/ws/stats", headers=headers)).json().get("alerting") or {}
            now = (alerting.get("triggers_fired"), alerting.get("triggers_published"))
            if now[0] == now[1] and now == last:
                return
            last = now
            await asyncio.sleep(0.5)


async def _evaluated(port: int, count: int, within: float) -> float:
    """Seconds until the server has evaluated ``count`` prices (at most ``within``)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while time.monotonic() - started < within:
            alerting = (await client.get("/api/ws/stats", headers=headers)).json().get("alerting") or {}
            if (alerting.get("prices_evaluated") or 0) >= count:
                break
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _watch(port: int, verbose: bool) -> None:
    """With ``--verbose``: the server's evaluation figures twice a second while prices are published."""
    if not verbose:
        return
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while True:
            alerting = (await client.get("/api/ws/stats", headers=headers)).json().get("alerting") or {}
            evaluation = alerting.get("evaluation") or {}
            print(
                f"  evaluated {alerting.get('prices_evaluated')} fired {alerting.get('triggers_fired')} "
                f"published {alerting.get('triggers_published')} lag {evaluation.get('lag')}",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(0.5)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="prices a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--spread", type=float, default=50.0, help="thresholds within this of the start")
    parser.add_argument("--lanes", type=int, default=8, help="publishing HTTP connections")
    parser.add_argument("--client-processes", type=int, default=2, help="processes holding the users")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last triggers")
    parser.add_argument("--backend", choices=("memory", "redis"), default="memory")
    parser.add_argument("--legend-root", default=str(ROOT), help="the checkout to run (another version)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--verbose", action="store_true", help="show the evaluation's progress")


def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    root = Path(args.legend_root).resolve()
    work = Path(tempfile.mkdtemp(prefix="legend-alert-live-"))
    figures = asyncio.run(run(args, root, work))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
