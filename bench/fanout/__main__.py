"""Fan-out benchmark: Legend Realtime beside the bare Litestar loop, a picows server and python-socketio.

    .venv/bin/python -m bench.fanout                       # the full run: 1,000, 5,000, 10,000 connections
    .venv/bin/python -m bench.fanout --connections 50 --seconds 1 --rounds 1 --rates 10   # seconds
    .venv/bin/python -m bench.fanout --filters 50 --connections 5000   # pattern alerts, filtered or not
    .venv/bin/python -m bench.fanout --storm                # restart storm: 18,000 clients, SIGTERM, resume

See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import uvloop

from bench.fanout import storm
from bench.fanout.clients import ClientPool
from bench.fanout.kinds import Running, kinds, start
from bench.fanout.plot import plot
from bench.fanout.procs import REPO_ROOT, raise_fd_limit, wait_redis
from bench.fanout.report import Report, ServerInfo, markdown, summary
from bench.fanout.runner import Bench

PACKAGES = (
    "litestar",
    "uvicorn",
    "websockets",
    "msgspec",
    "picows",
    "uvloop",
    "python-socketio",
    "python-engineio",
)


def _numbers(text: str, kind: type[float] | type[int]) -> list:  # type: ignore[type-arg]
    values = [kind(v) for v in text.split(",") if v.strip()]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [k.name for k in kinds(2, 1)]
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--connections",
        type=lambda t: _numbers(t, int),
        default=None,
        help="connection counts (default 1000,5000,10000; --storm: 18000, the largest one given)",
    )
    parser.add_argument(
        "--rates",
        type=lambda t: _numbers(t, float),
        default=[10.0, 5.0],
        help="paced loads, prices/s per connection (default 10,5)",
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per server, load and count (default 6)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="windows those seconds are split into, servers alternating (default 2)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds published before each window is measured (default 1)",
    )
    parser.add_argument(
        "--servers",
        type=lambda t: t.split(","),
        default=None,
        help=f"subset of {','.join(names)} (default all)",
    )
    parser.add_argument(
        "--channel",
        choices=("ticker", "patterns"),
        default=None,
        help="what is published: prices on ticker:BENCH (default) or pattern alerts on patterns",
    )
    parser.add_argument(
        "--filters",
        type=int,
        default=0,
        help="with patterns: each Legend also as NAME-filtered, its clients spread over N distinct filters "
        "that all match (issue 22); default servers legend,legend-max and their -filtered",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="legend serve --workers N for the Redis rows (default 2; 1: one process on Redis)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=0,
        help="load-generator processes (default: enough for the file descriptors, at least 2)",
    )
    parser.add_argument(
        "--sample-every",
        type=int,
        default=10,
        help="time every k-th frame of a server's clients (default 10)",
    )
    parser.add_argument(
        "--storm",
        action="store_true",
        help="the restart storm instead (issue 23): clients resume by seq across a SIGTERM and a new process",
    )
    parser.add_argument(
        "--storm-rate", type=float, default=2.0, help="--storm: prices a second on ticker:BENCH (default 2)"
    )
    parser.add_argument(
        "--storm-before",
        type=float,
        default=5.0,
        help="--storm: seconds of prices before the SIGTERM (default 5)",
    )
    parser.add_argument(
        "--storm-timeout",
        type=float,
        default=120.0,
        help="--storm: seconds after the SIGTERM to wait for every client to resume (default 120)",
    )
    parser.add_argument(
        "--storm-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="--storm: a Legend setting (TOML value) instead of the shipped one, e.g. "
        "server.drain_seconds=10; repeatable",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--from-json", type=Path, metavar="FILE", help="only render the tables, plot and Markdown of a --json"
    )
    parser.add_argument(
        "--markdown", type=Path, help="also write the tables as Markdown (docs/performance.md)"
    )
    parser.add_argument(
        "--plot", type=Path, default=Path("fanout.png"), help="PNG plot (default ./fanout.png)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile each saturated server with py-spy at the largest count",
    )
    parser.add_argument(
        "--legend-root", type=Path, default=REPO_ROOT, help="checkout to run Legend from (default this one)"
    )
    args = parser.parse_args(argv)
    if args.connections is None:
        args.connections = [storm.DEFAULT_CLIENTS] if args.storm else [1000, 5000, 10000]
    if args.storm and (args.storm_rate <= 0 or args.storm_before <= 0 or args.storm_timeout <= 0):
        parser.error("--storm-rate, --storm-before and --storm-timeout must be positive")
    bad = [a for a in args.storm_set if "=" not in a or "." not in a.split("=", 1)[0]]
    if bad:
        parser.error(f"--storm-set takes SECTION.KEY=VALUE, got {bad}")
    if args.filters < 0:
        parser.error("--filters must be >= 0")
    if args.filters and args.channel == "ticker":
        parser.error("--filters needs --channel patterns (the filters are over pattern alerts)")
    args.channel = args.channel or ("patterns" if args.filters else "ticker")
    every = kinds(args.workers, args.filters)
    selected = [k.name for k in every]
    if args.channel == "patterns":
        selected = [k.name for k in every if k.family != "socketio"]
    if args.servers is None:
        args.servers = selected
        if args.filters:
            args.servers = [n for n in selected if n.removesuffix("-filtered") in ("legend", "legend-max")]
    unknown = set(args.servers) - set(selected)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {selected}")
    if args.filters:
        bare = [k.name for k in every if k.name in args.servers and k.family != "legend"]
        if bare:
            parser.error(
                f"--filters measures Legend only: {', '.join(bare)} {'has' if len(bare) == 1 else 'have'} "
                "no subscription filters (run them without --filters)"
            )
    if args.seconds <= 0 or args.rounds < 1 or args.warmup < 0 or args.sample_every < 1 or args.workers < 1:
        parser.error("--seconds, --rounds, --sample-every must be positive, --warmup >= 0, --workers >= 1")
    return args


def machine(legend_root: Path) -> dict[str, object]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        versions["redis-server"] = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5
        ).stdout.split()[2]
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(legend_root)]
        commit = subprocess.run(
            [*git, "log", "-1", "--format=%h", "--", "legend"], capture_output=True, text=True, timeout=5
        ).stdout.strip()  # the last commit that changed Legend
        if subprocess.run(
            [*git, "status", "--porcelain", "legend"], capture_output=True, text=True, timeout=5
        ).stdout.strip():
            commit += " (with uncommitted changes in legend/)"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "legend_commit": commit,
        "load_average_at_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def start_all(args: argparse.Namespace, workdir: Path, report: Report) -> dict[str, Running]:
    """Start every selected server at once; one that does not come up is reported, not fatal."""
    running: dict[str, Running] = {}
    for kind in kinds(args.workers, args.filters):
        if kind.name in args.servers:
            report.servers[kind.name] = ServerInfo(kind.name, kind.label)
            running[kind.name] = start(kind, workdir, args.legend_root, args.channel)
    for name, server in running.items():
        try:
            if server.redis is not None:
                wait_redis(server.redis)
            server.server.wait_ready()
        except RuntimeError as exc:
            report.servers[name].available = False
            report.servers[name].error = str(exc)
            print(f"  ! {name} not available: {exc}", flush=True)
    return running


def write_outputs(args: argparse.Namespace, report: Report, argv: Sequence[str] | None) -> None:
    print(summary(report))
    plot(report, args.plot)
    print(f"\nplot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2, default=str), encoding="utf-8")
        print(f"figures: {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(report), encoding="utf-8")
        print(f"tables: {args.markdown}")


def too_small(args: argparse.Namespace, limit: int, connections: int) -> list[str]:
    """The selected servers that cannot hold ``connections``: a process holds ``limit`` - 500, and only
    Legend's ``--workers`` rows have several, over which SO_REUSEPORT spreads the clients about evenly
    (counted at 90%, so that the fullest worker still has room)."""
    per_process = limit - 500
    short: list[str] = []
    for kind in kinds(args.workers, args.filters):
        room = per_process if kind.workers == 1 else per_process * kind.workers * 9 // 10
        if kind.name in args.servers and connections > room:
            short.append(kind.name)
    return short


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.storm:
        return storm.main(args)
    if args.from_json:
        write_outputs(args, Report.from_json(json.loads(args.from_json.read_text(encoding="utf-8"))), argv)
        return 0
    limit = raise_fd_limit()
    most = max(args.connections)
    short = too_small(args, limit, most)
    if short:
        print(
            f"file descriptor limit {limit} per process is too low for {most:,} connections on "
            f"{', '.join(short)} (a process holds at most {limit - 500:,}; only Legend's --workers "
            "rows spread over several: e.g. --servers legend-w3-max --workers 3)",
            file=sys.stderr,
        )
        return 2
    sockets = most * len(args.servers)
    processes = max(args.client_processes, 2, math.ceil(sockets / (limit - 1000)))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    report = Report(
        connections=sorted(args.connections),
        rates=args.rates,
        seconds=args.seconds,
        rounds=args.rounds,
        warmup=args.warmup,
        client_processes=processes,
        sample_every=args.sample_every,
        channel=args.channel,
        filters=args.filters,
        machine=machine(args.legend_root),
        command=" ".join(["python -m bench.fanout", *(sys.argv[1:] if argv is None else argv)]),
    )
    what = "pattern alerts" if args.channel == "patterns" else "prices"
    if args.filters:
        what += f" ({args.filters} distinct filters on the -filtered servers)"
    print(
        f"fan-out benchmark of {what}: {', '.join(args.servers)}; {', '.join(f'{n:,}' for n in report.connections)} "
        f"connections; saturated and {', '.join(f'{r:g}' for r in args.rates)} prices/s per connection; "
        f"{args.seconds:g} s per server and load in {args.rounds} rounds; {processes} client processes; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the cleanup below runs
    started = time.monotonic()
    running: dict[str, Running] = {}
    pool: ClientPool | None = None
    with tempfile.TemporaryDirectory(prefix="legend-fanout-") as tmp:
        try:
            running = start_all(args, Path(tmp), report)
            pool = ClientPool(processes)
            uvloop.run(Bench(args, running, pool, report).run())
        except (KeyboardInterrupt, SystemExit):
            report.interrupted = True
            print("\ninterrupted: the figures below are those measured so far", flush=True)
        finally:
            if pool is not None:
                pool.stop()
            for server in running.values():
                try:
                    server.stop()
                except Exception as exc:  # keep stopping the others; the keepers die with us anyway
                    print(f"could not stop {server.kind.name}: {exc!r}", file=sys.stderr)
    report.duration_seconds = time.monotonic() - started
    write_outputs(args, report, argv)
    print(f"finished in {report.duration_seconds / 60:.1f} min")
    return 130 if report.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
