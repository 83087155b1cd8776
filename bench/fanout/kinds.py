"""The servers of a run: what each one is, how it is started, how clients reach it and how it is published to."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.fanout import frames
from bench.fanout.procs import HOST, REPO_ROOT, ServerProcess, child_env, free_port, start_redis
from bench.fanout.publisher import Target

ADMIN_TOKEN = "bench"
RAISED_BUDGET = 1_000_000


@dataclass(frozen=True)
class Kind:
    """One server under test; ``saturated``/``paced`` say which loads it is measured under."""

    name: str
    label: str
    family: str  # legend, litestar, picows or socketio
    saturated: bool
    paced: bool
    workers: int = 1
    budget: int = 10  # Legend's realtime.max_messages_per_second
    redis: bool = False  # Legend on the Redis backplane (a redis-server of its own)
    bars: bool = True  # Legend's bars.enabled: the bar builder reads the price log the bench's prices enter
    filters: int = 0  # --channel patterns: the clients subscribe over this many distinct filters (Legend)
    deflate: bool = False  # the clients offer permessage-deflate (no context takeover) and inflate


def kinds(workers: int, filters: int = 0) -> list[Kind]:
    """Every server of a full run. Legend as shipped is measured paced; with its budget raised, saturated,
    also with ``bars.enabled = false`` (``legend-max-nobars``: the cost of building bars, issue 24). With
    ``filters``, each Legend also as ``NAME-filtered``: a server of its own whose clients subscribe to
    ``patterns`` over that many distinct filters (issue 22).

    The Redis rows run ``legend serve --workers N``; with ``workers`` 1, one process on Redis (no flag).
    """
    raised = f"budget {RAISED_BUDGET:,}/s"
    on_redis = f"--workers {workers} on Redis" if workers > 1 else "one process on Redis"
    w = f"legend-w{workers}"
    every = [
        Kind(
            "legend",
            "Legend as shipped (budget 10/s), one process",
            saturated=False,
            paced=True,
            family="legend",
        ),
        Kind(
            "legend-max",
            f"Legend, {raised}, one process",
            saturated=True,
            paced=False,
            budget=RAISED_BUDGET,
            family="legend",
        ),
        Kind(
            "legend-max-nobars",
            f"Legend, {raised}, one process, bars off (bars.enabled = false)",
            saturated=True,
            paced=False,
            budget=RAISED_BUDGET,
            bars=False,
            family="legend",
        ),
        Kind(
            "legend-max-deflate",
            f"Legend, {raised}, one process, clients with permessage-deflate",
            saturated=True,
            paced=False,
            budget=RAISED_BUDGET,
            deflate=True,
            family="legend",
        ),
        Kind(
            w,
            f"Legend as shipped, {on_redis}",
            saturated=False,
            paced=True,
            workers=workers,
            redis=True,
            family="legend",
        ),
        Kind(
            f"{w}-max",
            f"Legend, {raised}, {on_redis}",
            saturated=True,
            paced=False,
            workers=workers,
            budget=RAISED_BUDGET,
            redis=True,
            family="legend",
        ),
        Kind(
            "litestar",
            "bare Litestar, one send loop (our stack's ceiling)",
            "litestar",
            saturated=True,
            paced=True,
        ),
        Kind("picows", "framework-free picows (the limit of Python)", "picows", saturated=True, paced=True),
        Kind("socketio", "python-socketio, one room (the peer)", "socketio", saturated=True, paced=True),
    ]
    if filters <= 0:
        return every
    out: list[Kind] = []
    for kind in every:
        out.append(kind)
        if kind.family == "legend":
            label = f"{kind.label}; clients over {filters} distinct filters"
            out.append(replace(kind, name=f"{kind.name}-filtered", label=label, filters=filters))
    return out


def legend_settings(kind: Kind, data_dir: Path, redis_port: int | None) -> str:
    """The settings file: as shipped but for a quiet quote poller, a large outbox, long silence allowed
    (and no bar building for a kind without ``bars``)."""
    lines = [
        "[server]",
        'log_level = "warning"',
        "[security]",
        f'admin_token = "{ADMIN_TOKEN}"',
        "[realtime]",
        "update_interval = 3600.0",  # a quiet quote poller: the bench publishes the prices
        "after_hours_interval = 3600.0",
        f"max_messages_per_second = {kind.budget}",
        "max_pending_messages = 100000",  # throughput, not the slow-consumer limit, is measured
        "stale_after = 3600.0",  # the clients only listen
        "[database]",
        f'data_dir = "{data_dir}"',
    ]
    if not kind.bars:
        lines += ["[bars]", "enabled = false"]
    if redis_port is not None:
        lines += ["[redis]", f'url = "redis://{HOST}:{redis_port}"']
    return "\n".join(lines) + "\n"


@dataclass
class Running:
    """A started server: its processes, where clients connect, where prices are published."""

    kind: Kind
    server: ServerProcess
    url: str  # {index} is replaced per client
    dialect: str
    target: Target
    redis: ServerProcess | None = None
    # what the clients subscribe with and how they read a data frame (Group's arguments); None: the ticker
    stream: dict[str, Any] | None = None
    # where GET /api/ws/stats tells the bar builder's figures: one-process Legend only (with --workers,
    # the worker answering may not be the one holding the bars lease)
    stats_port: int | None = None

    def stop(self) -> None:
        for process in (self.server, self.redis):
            if process is not None:
                process.stop()


def patterns_stream(filters: int) -> dict[str, Any]:
    """The clients' side of ``--channel patterns``: subscribe frames (over ``filters`` filters) and how a
    ``pattern_alert`` and its id (in ``message``) look."""
    return {
        "subscribes": frames.pattern_subscribes(filters),
        "data_prefix": frames.PATTERN_PREFIX,
        "id_key": frames.PATTERN_ID_KEY,
        "id_end": b'"',
    }


def start(kind: Kind, workdir: Path, legend_root: Path, channel: str = "ticker") -> Running:
    """Start ``kind`` (and its redis-server); readiness is waited for by the caller. ``channel``: what is
    published, ``ticker`` (prices on ``ticker:BENCH``) or ``patterns`` (pattern alerts)."""
    port = free_port()
    base = f"ws://{HOST}:{port}"
    patterns = channel == "patterns"
    stream = patterns_stream(kind.filters) if patterns else None
    frame = frames.pattern_frame if patterns else frames.frame
    if kind.family == "legend":
        redis = start_redis(f"{kind.name}-redis", workdir) if kind.redis else None
        config = workdir / f"{kind.name}.toml"
        data_dir = workdir / f"{kind.name}-data"
        config.write_text(legend_settings(kind, data_dir, redis.port if redis else None), encoding="utf-8")
        argv = [sys.executable, "-m", "legend", "serve", "--port", str(port), "--config", str(config)]
        if kind.workers > 1:
            argv += ["--workers", str(kind.workers)]
        server = ServerProcess(kind.name, argv, port, workdir, child_env(legend_root))
        target = Target(
            port,
            "/api/ws/broadcast/pattern" if patterns else "/api/ws/broadcast/price",
            frames.pattern_body if patterns else frames.legend_body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        stats_port = port if kind.workers == 1 and not patterns else None  # alerts build no bars
        url = base + "/api/ws?user_id={index}"
        return Running(kind, server, url, "json", target, redis, stream, stats_port)
    argv = [sys.executable, "-m", "bench.fanout.servers", kind.family, str(port)]
    server = ServerProcess(kind.name, argv, port, workdir, child_env(REPO_ROOT))
    if kind.family == "picows":
        return Running(
            kind, server, base + "/ws", "json", Target(port, "/publish", frame, websocket=True), stream=stream
        )
    if kind.family == "socketio":
        if patterns:
            raise ValueError("socketio is not measured with --channel patterns")  # __main__ refuses it
        return Running(kind, server, base + frames.SIO_PATH, "sio", Target(port, "/broadcast", frame))
    return Running(kind, server, base + "/ws", "json", Target(port, "/broadcast", frame), stream=stream)
