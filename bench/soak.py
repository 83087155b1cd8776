"""A bounded soak: a real ``legend serve``, prices broadcast and alert rules firing while client connections
churn (connect, subscribe, stay a while, leave cleanly or drop the TCP connection, come back resuming by
``seq``). What it checks at the end, once every client has left:

- server RSS back near its baseline (measured after a warm-up round, so that first-use allocations are
  in the baseline): at most ``--rss-tolerance-mib`` above it;
- no asyncio task leak: ``asyncio_tasks`` of ``GET /api/ws/stats`` back at (or below) its baseline;
- every must-deliver message accounted for: each alert trigger stored for a user (``GET /api/alerts/events``)
  received by that user exactly once (by ``alert_id``), across all its reconnects, and the user's private
  stream received without a gap or a repeat (by ``seq``).

Short run (the suite runs this, tests/soak/test_soak.py, about 30 s)::

    .venv/bin/python -m bench.soak --users 8 --seconds 15

Long run (ten minutes, 50 users; ``--json`` keeps the figures)::

    .venv/bin/python -m bench.soak --users 50 --seconds 600 --json soak.json

The settings raise ``connect_rate_per_ip`` (every client comes from 127.0.0.1 and reconnects often);
everything else is as shipped. Exit status 0 when everything held, 1 otherwise (the report says what).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout.procs import descendants, rss_kib  # noqa: E402
from tests.support.server import LegendServer  # noqa: E402

RULE_TICKER = "SOAK"  # alert rules watch it; its prices cross the threshold back and forth
THRESHOLD = 100.0
TICKERS = ("AAPL", "SPY")  # streamed by the simulated provider and broadcast too: price traffic


@dataclass
class Trader:
    """One user's client across all its connections: what it has seen and received."""

    user: str
    seen: dict[str, int] = field(default_factory=dict)  # stream -> highest seq seen
    alert_ids: collections.Counter[str] = field(default_factory=collections.Counter)
    private_seqs: list[int] = field(default_factory=list)  # of alerts:user:{user}, in arrival order
    connections: int = 0
    resumes: int = 0
    dropped: int = 0  # left by dropping the TCP connection
    closed_by_server: collections.Counter[int] = field(default_factory=collections.Counter)
    unrecovered: list[str] = field(default_factory=list)  # resumes the history could not answer
    prices: int = 0

    @property
    def private(self) -> str:
        return f"alerts:user:{self.user}"

    def take(self, message: dict[str, Any]) -> None:
        stream, seq = message.get("channel"), message.get("seq")
        if not isinstance(stream, str) or not isinstance(seq, int):
            return
        if message.get("type") == "alert_trigger" and stream == self.private:
            self.private_seqs.append(seq)
            self.alert_ids[str(message.get("alert_id"))] += 1
        elif message.get("type") == "price_update":
            self.prices += 1
        self.seen[stream] = max(self.seen.get(stream, 0), seq)

    def subscriptions(self) -> list[dict[str, Any]]:
        """Subscribe frames for alerts and the tickers, resuming from what was seen."""
        frames: list[dict[str, Any]] = []
        since = {s: self.seen[s] for s in ("alerts", self.private) if s in self.seen}
        frames.append({"type": "subscribe", "channel": "alerts", **({"since": since} if since else {})})
        for ticker in TICKERS:
            seen = self.seen.get(f"ticker:{ticker}")
            frames.append(
                {"type": "subscribe", "channel": "ticker", "ticker": ticker}
                | ({"since": seen} if seen is not None else {})
            )
        return frames

    async def session(self, url: str, stay: float, drop: bool) -> None:
        """Connect, subscribe (resuming), read for ``stay`` seconds, leave."""
        connection = await websockets.connect(f"{url}?user_id={self.user}", open_timeout=15, max_size=2**24)
        self.connections += 1
        resuming = bool(self.seen)
        self.resumes += resuming
        asked = {s: self.seen.get(s) for s in ("alerts", self.private)}
        try:
            for frame in self.subscriptions():
                await connection.send(json.dumps(frame))
            deadline = time.monotonic() + stay
            while (left := deadline - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(connection.recv(), left)
                except TimeoutError:
                    break
                message = json.loads(raw)
                if message.get("type") == "history":
                    stream = message["channel"]
                    if asked.get(stream) is not None and message.get("recovered") is False:
                        self.unrecovered.append(f"{stream} since {asked[stream]}")
                    for item in message["messages"]:
                        self.take(item)
                    self.seen[stream] = max(self.seen.get(stream, 0), message["seq"])
                else:
                    self.take(message)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            self.closed_by_server[code] += 1
            return
        if drop:
            self.dropped += 1
            connection.transport.abort()  # no close handshake: the server finds the socket gone
        else:
            await connection.close()


@dataclass
class Report:
    users: int
    seconds: float
    connections: int = 0
    resumes: int = 0
    dropped: int = 0
    closed_by_server: dict[str, int] = field(default_factory=dict)
    prices_published: int = 0
    prices_received: int = 0
    triggers_stored: int = 0
    triggers_received: int = 0
    triggers_missing: int = 0
    triggers_repeated: int = 0
    private_stream_gaps: int = 0
    unrecovered_resumes: int = 0
    rss_base_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_tolerance_mib: float = 0.0
    tasks_base: int = 0
    tasks_peak: int = 0
    tasks_end: int = 0
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"soak: {self.users} users, {self.seconds:g} s of churn",
            f"  connections {self.connections} (resumed {self.resumes}, dropped {self.dropped}, "
            f"closed by the server {self.closed_by_server or 0})",
            f"  prices published {self.prices_published}, received {self.prices_received}",
            f"  alert triggers stored {self.triggers_stored}, received {self.triggers_received} "
            f"(missing {self.triggers_missing}, repeated {self.triggers_repeated}, private-stream gaps "
            f"{self.private_stream_gaps}, unrecovered resumes {self.unrecovered_resumes})",
            f"  server RSS {self.rss_base_mib:.1f} MiB at baseline, {self.rss_peak_mib:.1f} peak, "
            f"{self.rss_end_mib:.1f} after (tolerance +{self.rss_tolerance_mib:g})",
            f"  asyncio tasks {self.tasks_base} at baseline, {self.tasks_peak} peak, {self.tasks_end} after",
        ]
        lines.append("  HELD" if not self.failures else "  FAILED: " + "; ".join(self.failures))
        return "\n".join(lines)


class Soak:
    def __init__(self, users: int, seconds: float, rss_tolerance_mib: float, seed: int) -> None:
        self.random = random.Random(seed)
        self.seconds = seconds
        self.traders = [Trader(f"soak{i}") for i in range(users)]
        self.report = Report(users=users, seconds=seconds, rss_tolerance_mib=rss_tolerance_mib)
        self.server = LegendServer(
            {
                "realtime": {
                    "update_interval": 1,
                    "after_hours_interval": 1,
                    "connect_rate_per_ip": 1000,
                    "connect_burst_per_ip": 1000,
                },
                # every simulated user calls from this one address (each user's own limit stays)
                "security": {"api_address_rate": 0},
            }
        )
        self.published = 0

    # ───────────── the server, measured ─────────────

    def rss_mib(self) -> float:
        process = self.server.process
        assert process is not None
        return rss_kib([process.pid, *descendants(process.pid)]) / 1024

    async def stats(self, http: httpx.AsyncClient) -> dict[str, Any]:
        response = await http.get("/api/ws/stats", headers=self.server.admin)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def quiescent(self, http: httpx.AsyncClient) -> tuple[float, int]:
        """RSS and task count once every connection is gone: the lowest of a few readings."""
        for _ in range(300):
            if (await self.stats(http))["active_connections"] == 0:
                break
            await asyncio.sleep(0.1)
        else:
            self.report.failures.append("connections still open 30 s after every client left")
        readings = []
        for _ in range(5):
            await asyncio.sleep(0.2)
            readings.append((self.rss_mib(), (await self.stats(http))["asyncio_tasks"]))
        return min(r[0] for r in readings), min(r[1] for r in readings)

    # ───────────── load ─────────────

    async def publish(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """SOAK crosses the rules' threshold every other price (a trigger per user each time up); the
        tickers move too. About 16 prices a second."""
        step = 0
        while not stop.is_set():
            step += 1
            price = THRESHOLD + (1.0 if step % 2 else -1.0) + step * 1e-6  # unique prices
            for ticker, value in ((RULE_TICKER, price), (TICKERS[step % 2], 200 + self.random.random())):
                response = await http.post(
                    "/api/ws/broadcast/price",
                    headers=self.server.admin,
                    json={"ticker": ticker, "price": round(value, 6)},
                )
                response.raise_for_status()
                self.published += 1
            await asyncio.sleep(0.125)

    async def churn(self, trader: Trader, until: float) -> None:
        while time.monotonic() < until:
            stay = self.random.uniform(0.2, 2.0)
            await trader.session(self.server.ws_url, stay, drop=self.random.random() < 0.35)
            await asyncio.sleep(self.random.uniform(0.0, 0.3))

    async def sample(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.report.rss_peak_mib = max(self.report.rss_peak_mib, self.rss_mib())
            self.report.tasks_peak = max(self.report.tasks_peak, (await self.stats(http))["asyncio_tasks"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    # ───────────── the run ─────────────

    async def events(self, http: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
        """Every trigger stored for ``user``, newest first."""
        found: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"before": before} if before else {})
            response = await http.get("/api/alerts/events", params=params, headers={"X-User-Id": user})
            response.raise_for_status()
            page = response.json()
            found.extend(page["events"])
            before = page["next_before"]
            if before is None:
                return found

    async def run(self) -> Report:
        report = self.report
        async with httpx.AsyncClient(base_url=self.server.url, timeout=30) as http:
            for trader in self.traders:
                rule = {
                    "ticker": RULE_TICKER,
                    "kind": "price_above",
                    "threshold": THRESHOLD,
                    "rearm": "recross",
                    "session": "any",  # the soak runs at any hour
                }
                response = await http.post("/api/alerts/rules", json=rule, headers={"X-User-Id": trader.user})
                response.raise_for_status()
            # warm-up: every client once, a few prices, then the baseline
            stop = asyncio.Event()
            publisher = asyncio.create_task(self.publish(http, stop))
            await asyncio.gather(*(t.session(self.server.ws_url, 1.0, drop=False) for t in self.traders))
            stop.set()
            await publisher
            report.rss_base_mib, report.tasks_base = await self.quiescent(http)
            # churn while prices and triggers flow
            stop = asyncio.Event()
            background = [
                asyncio.create_task(self.publish(http, stop)),
                asyncio.create_task(self.sample(http, stop)),
            ]
            until = time.monotonic() + self.seconds
            await asyncio.gather(*(self.churn(t, until) for t in self.traders))
            stop.set()
            await asyncio.gather(*background)
            # every stored trigger published, then every client back once to collect what it missed
            stored: dict[str, list[dict[str, Any]]] = {}
            for _ in range(150):
                stored = {t.user: await self.events(http, t.user) for t in self.traders}
                if all(e["published"] for events in stored.values() for e in events):
                    break
                await asyncio.sleep(0.2)
            else:
                report.failures.append("stored triggers still unpublished 30 s after the last price")
            await asyncio.gather(*(t.session(self.server.ws_url, 1.5, drop=False) for t in self.traders))
            report.rss_end_mib, report.tasks_end = await self.quiescent(http)
        self.account(stored)
        return report

    def account(self, stored: dict[str, list[dict[str, Any]]]) -> None:
        report = self.report
        report.prices_published = self.published
        for trader in self.traders:
            report.connections += trader.connections
            report.resumes += trader.resumes
            report.dropped += trader.dropped
            for code, count in trader.closed_by_server.items():
                report.closed_by_server[str(code)] = report.closed_by_server.get(str(code), 0) + count
            report.prices_received += trader.prices
            ids = {e["alert_id"] for e in stored.get(trader.user, [])}
            report.triggers_stored += len(ids)
            report.triggers_received += sum(trader.alert_ids.values())
            report.triggers_missing += len(ids - set(trader.alert_ids))
            report.triggers_repeated += sum(n - 1 for n in trader.alert_ids.values() if n > 1)
            unknown = set(trader.alert_ids) - ids
            if unknown:
                report.failures.append(f"{trader.user} received triggers never stored: {sorted(unknown)[:3]}")
            seqs = trader.private_seqs
            report.private_stream_gaps += sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
            if seqs and seqs[0] != 1:
                report.private_stream_gaps += 1
            report.unrecovered_resumes += len(trader.unrecovered)
        if report.triggers_stored == 0:
            report.failures.append("no alert trigger fired: nothing was soaked")
        if report.triggers_missing or report.triggers_repeated:
            report.failures.append(
                f"triggers not received exactly once: {report.triggers_missing} missing, "
                f"{report.triggers_repeated} repeated"
            )
        if report.private_stream_gaps or report.unrecovered_resumes:
            report.failures.append(
                f"private streams: {report.private_stream_gaps} gaps, {report.unrecovered_resumes} "
                "resumes not recovered"
            )
        if report.tasks_end > report.tasks_base:
            report.failures.append(f"asyncio tasks {report.tasks_end} after, {report.tasks_base} at baseline")
        if report.rss_end_mib - report.rss_base_mib > report.rss_tolerance_mib:
            report.failures.append(
                f"RSS {report.rss_end_mib - report.rss_base_mib:+.1f} MiB over its baseline "
                f"(tolerance {report.rss_tolerance_mib:g})"
            )

    def __enter__(self) -> Soak:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8, help="clients, one user each (default 8)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of churn (default 15)")
    parser.add_argument(
        "--rss-tolerance-mib", type=float, default=16.0, help="RSS growth allowed after the clients left"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    with Soak(args.users, args.seconds, args.rss_tolerance_mib, args.seed) as soak:
        try:
            report = asyncio.run(soak.run())
        except Exception:
            print(soak.server.logs()[-5000:], file=sys.stderr)
            raise
        if report.failures:
            print(soak.server.logs()[-5000:], file=sys.stderr)
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
