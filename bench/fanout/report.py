"""The figures of a run, the tables printed at its end, the ratios and the issue's targets."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Window:
    """Raw figures of one publishing window against one server."""

    seconds: float  # measured: after the warm-up, until the last price was published
    elapsed: float  # publishing time, warm-up included
    connections: int
    published: int  # prices the server accepted
    expected: int  # frames owed: offered (paced) or accepted (saturated) prices × connections
    offered: int  # paced: prices the schedule had; saturated: prices sent
    failures: int
    frames: int  # frames of this window's prices received, once drained
    in_window: int  # frames received during the measured seconds
    on_last: int  # clients whose last frame was the last published price
    without_any: int
    closed: int
    strays: int
    latencies: list[float]  # seconds, of prices published during the measured seconds
    server_cpu: float  # CPU-seconds during the measured seconds
    clients_cpu: float
    publisher_cpu: float
    backplane_cpu: float
    idle_servers_cpu: float
    machine_busy: float
    drain_seconds: float
    recipients: int
    gate_timeouts: int = 0  # saturated: publishes that went out without the clients having caught up
    # prices the server's bar builder built from the window's start (warm-up included) to the end of
    # publishing, and once drained; None where it builds no bars (or has several processes)
    bars_built: int | None = None
    bars_built_drained: int | None = None
    wire_bytes: int = 0  # payload bytes of the counted frames, as they came (compressed or not)
    compressed: int = 0  # counted frames that came compressed (permessage-deflate)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Phase:
    """One load against one server at one connection count: the sum of its windows."""

    server: str
    connections: int
    rate: float | None  # prices a second per connection; None = saturated
    windows: int = 0
    seconds: float = 0.0
    delivered_per_s: float = 0.0  # frames received a second, all clients together
    delivered_pct: float = math.nan  # of what was offered (paced) or accepted (saturated)
    offered_per_s: float = 0.0  # prices a second the publisher offered
    published_per_s: float = 0.0  # prices a second the server accepted
    clients_on_last_pct: float = math.nan  # clients whose last frame was the last price
    clients_without_any: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    samples: int = 0
    server_cpu_pct: float = 0.0  # of one core; all the server's processes
    clients_cpu_pct: float = 0.0  # the load generator
    publisher_cpu_pct: float = 0.0  # the bench's own process
    backplane_cpu_pct: float = 0.0  # redis-server, with --workers
    idle_servers_cpu_pct: float = 0.0  # the bench's other servers, holding their idle connections
    others_cpu_pct: float = 0.0  # everything on the machine that is not this benchmark
    cpu_us_per_delivery: float = math.nan
    closed: int = 0
    failures: int = 0
    strays: int = 0
    drain_seconds: float = 0.0
    gate_timeouts: int = 0
    prices_published: int = 0  # accepted by the server, warm-up included
    bars_built: int | None = None  # of those, built into bars by the end of publishing (Window)
    bars_built_drained: int | None = None  # … and once drained
    bytes_per_delivery: float = math.nan  # payload bytes a frame, as they came
    compressed_pct: float = 0.0  # frames that came compressed
    error: str = ""

    @property
    def accepted_pct(self) -> float:
        """Paced: prices the server accepted, % of those offered (a late answer holds the publisher back)."""
        return 100 * self.published_per_s / self.offered_per_s if self.offered_per_s else math.nan

    @property
    def load(self) -> str:
        return "saturated" if self.rate is None else f"{self.rate:g}/s"

    @classmethod
    def of(cls, server: str, connections: int, rate: float | None, windows: Sequence[Window]) -> Phase:
        phase = cls(server, connections, rate, windows=len(windows))
        if not windows:
            return phase
        seconds = phase.seconds = sum(w.seconds for w in windows)
        in_window = sum(w.in_window for w in windows)
        phase.delivered_per_s = in_window / seconds if seconds else 0.0
        expected = sum(w.expected for w in windows)
        phase.delivered_pct = 100 * sum(w.frames for w in windows) / expected if expected else math.nan
        elapsed = sum(w.elapsed for w in windows)
        phase.offered_per_s = sum(w.offered for w in windows) / elapsed if elapsed else 0.0
        phase.published_per_s = sum(w.published for w in windows) / elapsed if elapsed else 0.0
        clients = sum(w.connections for w in windows)
        phase.clients_on_last_pct = 100 * sum(w.on_last for w in windows) / clients if clients else math.nan
        phase.clients_without_any = max(w.without_any for w in windows)
        latencies = [v for w in windows for v in w.latencies]
        phase.samples = len(latencies)
        if latencies:
            phase.p50_ms = 1000 * percentile(latencies, 50)
            phase.p99_ms = 1000 * percentile(latencies, 99)
            phase.max_ms = 1000 * max(latencies)
        server_cpu = sum(w.server_cpu for w in windows)
        accounted = 0.0
        for name in ("server", "clients", "publisher", "backplane", "idle_servers"):
            cpu = sum(getattr(w, f"{name}_cpu") for w in windows)
            accounted += cpu
            setattr(phase, f"{name}_cpu_pct", 100 * cpu / seconds if seconds else 0.0)
        busy = sum(w.machine_busy for w in windows)
        phase.others_cpu_pct = max(0.0, 100 * (busy - accounted) / seconds) if seconds else 0.0
        if in_window:
            phase.cpu_us_per_delivery = 1e6 * server_cpu / in_window
        phase.closed = sum(w.closed for w in windows)
        phase.failures = sum(w.failures for w in windows)
        phase.strays = sum(w.strays for w in windows)
        phase.drain_seconds = max(w.drain_seconds for w in windows)
        phase.gate_timeouts = sum(w.gate_timeouts for w in windows)
        phase.prices_published = sum(w.published for w in windows)
        frames = sum(w.frames for w in windows)
        if frames:
            phase.bytes_per_delivery = sum(w.wire_bytes for w in windows) / frames
            phase.compressed_pct = 100 * sum(w.compressed for w in windows) / frames
        if all(w.bars_built is not None for w in windows):
            phase.bars_built = sum(w.bars_built or 0 for w in windows)
        if all(w.bars_built_drained is not None for w in windows):
            phase.bars_built_drained = sum(w.bars_built_drained or 0 for w in windows)
        return phase


@dataclass
class Memory:
    """RSS of a server (all its processes) before and after N idle subscribed connections."""

    connections: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    processes: int = 0
    connect_seconds: float = 0.0

    @property
    def kb_per_connection(self) -> float:
        """KB (1,000 bytes) of RSS per connection."""
        if not self.connections:
            return math.nan
        return 1024 * (self.rss_after_kib - self.rss_before_kib) / self.connections / 1000


@dataclass
class ServerInfo:
    name: str
    label: str
    available: bool = True
    error: str = ""
    memory: Memory | None = None
    bars: dict[str, Any] | None = None  # the bar builder's figures at the end (/api/ws/stats), one process


@dataclass
class Report:
    connections: list[int]
    rates: list[float]
    seconds: float
    rounds: int
    warmup: float
    client_processes: int
    sample_every: int
    channel: str = "ticker"  # what was published: prices on ticker:BENCH, or pattern alerts on patterns
    filters: int = 0  # the -filtered servers' clients were spread over this many distinct filters
    machine: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    servers: dict[str, ServerInfo] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0
    interrupted: bool = False

    def phase(self, server: str, connections: int, rate: float | None) -> Phase | None:
        for p in self.phases:
            if p.server == server and p.connections == connections and p.rate == rate:
                return p
        return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """The report that ``to_json`` wrote (to render its tables and plot again)."""

        def build(kind: Any, values: dict[str, Any]) -> Any:
            return kind(**{f.name: values[f.name] for f in fields(kind) if f.name in values})

        report = build(cls, data)
        report.servers = {}
        for name, info in data["servers"].items():
            report.servers[name] = build(ServerInfo, info)
            report.servers[name].memory = build(Memory, info["memory"]) if info.get("memory") else None
        report.phases = [build(Phase, p) for p in data["phases"]]
        return report

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        for name, info in self.servers.items():
            if info.memory is not None:
                data["servers"][name]["memory"]["kb_per_connection"] = info.memory.kb_per_connection
        data["ratios"] = [{"label": label, "value": value} for label, value in ratios(self)]
        data["targets"] = [{"target": t, "verdict": v, "measured": m} for t, v, m in targets(self)]
        return data


# ───────────────────────────── tables ─────────────────────────────


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}%"


def describe(phase: Phase) -> str:
    """One line per phase, for the progress display and the final table."""
    if phase.error:
        return f"{phase.server:19} n={phase.connections:<6} {phase.load:9} ERROR {phase.error}"
    extra = ""
    if phase.rate is not None and phase.accepted_pct < 99.95:
        extra += f"  (accepted {phase.accepted_pct:.0f}% of the prices)"
    if phase.closed:
        extra += f"  CLOSED {phase.closed}"
    if phase.failures:
        extra += f"  FAILED PUBLISHES {phase.failures}"
    if phase.gate_timeouts:
        extra += f"  (clients behind at {phase.gate_timeouts} publishes)"
    if phase.compressed_pct:
        extra += f"  {phase.bytes_per_delivery:.0f} B/frame, {phase.compressed_pct:.0f}% deflated"
    return (
        f"{phase.server:19} n={phase.connections:<6} {phase.load:9} "
        f"{phase.delivered_per_s:9,.0f} msg/s  {_pct(phase.delivered_pct):>6} delivered  "
        f"last {_pct(phase.clients_on_last_pct):>6}  p50 {_ms(phase.p50_ms):>6} ms  p99 {_ms(phase.p99_ms):>6} ms  "
        f"cpu: server {phase.server_cpu_pct:3.0f}%"
        + (f" +redis {phase.backplane_cpu_pct:.0f}%" if phase.backplane_cpu_pct >= 0.5 else "")
        + f", clients {phase.clients_cpu_pct:3.0f}%, bench {phase.publisher_cpu_pct:2.0f}%, "
        f"others {phase.others_cpu_pct:3.0f}%" + extra
    )


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _saturated(report: Report, server: str, n: int) -> float:
    phase = report.phase(server, n, None)
    return phase.delivered_per_s if phase is not None and not phase.error else math.nan


def _legend_names(report: Report) -> tuple[str, str, str, str]:
    """(as shipped, raised budget, workers as shipped, workers raised budget)."""
    workers = [n for n in report.servers if n.startswith("legend-w") and not n.endswith("-max")]
    w = workers[0] if workers else "legend-w2"
    return "legend", "legend-max", w, f"{w}-max"


def ratios(report: Report) -> list[tuple[str, float]]:
    """Ratios of the same run: saturated throughput, and at equal paced load, server CPU and p99."""
    shipped, raised, _, workers_raised = _legend_names(report)
    found: list[tuple[str, float]] = []
    pairs = [
        (raised, "litestar"),
        (raised, "socketio"),
        ("picows", raised),
        ("litestar", "picows"),
        (workers_raised, raised),
    ]
    pairs = [(a, b) for a, b in pairs if a in report.servers and b in report.servers]
    bars_off = f"{raised}-nobars"
    with_bars = raised in report.servers and bars_off in report.servers
    for n in report.connections:
        for a, b in pairs:
            value = ratio(_saturated(report, a, n), _saturated(report, b, n))
            found.append((f"n={n} saturated msg/s: {a} / {b}", value))
        if with_bars:  # issue 24: building bars must not slow the fan-out
            on, off = report.phase(raised, n, None), report.phase(bars_off, n, None)
            found.append(
                (
                    f"n={n} saturated msg/s: bars on / bars off ({raised} / {bars_off})",
                    ratio(_saturated(report, raised, n), _saturated(report, bars_off, n)),
                )
            )
            if on is not None and off is not None and not on.error and not off.error:
                found.append(
                    (
                        f"n={n} saturated server CPU per msg: bars on / bars off",
                        ratio(on.cpu_us_per_delivery, off.cpu_us_per_delivery),
                    )
                )
    deflated = f"{raised}-deflate"
    if raised in report.servers and deflated in report.servers:  # issue 23: compressed once
        for n in report.connections:
            on, off = report.phase(deflated, n, None), report.phase(raised, n, None)
            found.append(
                (
                    f"n={n} saturated msg/s: deflate / plain ({deflated} / {raised})",
                    ratio(_saturated(report, deflated, n), _saturated(report, raised, n)),
                )
            )
            if on is not None and off is not None and not on.error and not off.error:
                found.append(
                    (
                        f"n={n} saturated bytes per delivery: deflate / plain",
                        ratio(on.bytes_per_delivery, off.bytes_per_delivery),
                    )
                )
    for rate in report.rates:
        for n in report.connections:
            ours, base = report.phase(shipped, n, rate), report.phase("litestar", n, rate)
            if ours is None or base is None or ours.error or base.error:
                continue
            found.append(
                (
                    f"n={n} {rate:g}/s server CPU per msg: {shipped} / litestar",
                    ratio(ours.cpu_us_per_delivery, base.cpu_us_per_delivery),
                )
            )
            found.append((f"n={n} {rate:g}/s p99: {shipped} / litestar", ratio(ours.p99_ms, base.p99_ms)))
    found += filter_ratios(report)
    for name, info in report.servers.items():
        if name.endswith("-filtered"):  # its own figure: the filter's bytes (filter_memory_lines)
            continue
        if name != shipped and info.memory is not None and report.servers.get(shipped):
            mine = report.servers[shipped].memory
            if mine is not None:
                found.append(
                    (
                        f"RSS per idle connection: {shipped} / {name}",
                        ratio(mine.kb_per_connection, info.memory.kb_per_connection),
                    )
                )
    return found


def filter_pairs(report: Report) -> list[tuple[str, str]]:
    """(unfiltered, filtered) servers of a ``--filters`` run: the same Legend, clients with and without."""
    return [
        (name[: -len("-filtered")], name)
        for name in report.servers
        if name.endswith("-filtered") and name[: -len("-filtered")] in report.servers
    ]


def filter_kb(report: Report, plain: str, filtered: str) -> float:
    """RSS per connection of a filter: the filtered server's KB per idle connection less the unfiltered
    one's (same connection count, same subscribe but for the filter)."""
    a, b = report.servers[filtered].memory, report.servers[plain].memory
    if a is None or b is None:
        return math.nan
    return a.kb_per_connection - b.kb_per_connection


def filter_ratios(report: Report) -> list[tuple[str, float]]:
    """Issue 22: filtered over unfiltered, same run: saturated msg/s, server CPU per message (saturated and
    paced)."""
    found: list[tuple[str, float]] = []
    for plain, filtered in filter_pairs(report):
        for n in report.connections:
            for rate in [None, *report.rates]:
                a, b = report.phase(filtered, n, rate), report.phase(plain, n, rate)
                if a is None or b is None or a.error or b.error:
                    continue
                load = "saturated" if rate is None else f"{rate:g}/s"
                if rate is None:
                    found.append(
                        (
                            f"n={n} saturated msg/s: {filtered} / {plain}",
                            ratio(a.delivered_per_s, b.delivered_per_s),
                        )
                    )
                else:
                    found.append(
                        (
                            f"n={n} {load} delivered: {filtered} / {plain}",
                            ratio(a.delivered_pct, b.delivered_pct),
                        )
                    )
                found.append(
                    (
                        f"n={n} {load} server CPU per msg: {filtered} / {plain}",
                        ratio(a.cpu_us_per_delivery, b.cpu_us_per_delivery),
                    )
                )
    return found


def filter_targets(report: Report) -> list[tuple[str, str, str]]:
    """Issue 22's benchmark: at 5,000 connections over 50 filters, delivered msg/s filtered / unfiltered
    >= 0.9 (for the pairs measured saturated), and <= 1 KB per connection for a filter."""
    out: list[tuple[str, str, str]] = []
    for plain, filtered in filter_pairs(report):
        if not (report.servers[plain].available and report.servers[filtered].available):
            continue
        if any(p.server == plain and p.rate is None for p in report.phases):
            value = ratio(_saturated(report, filtered, 5000), _saturated(report, plain, 5000))
            ok = None if math.isnan(value) else value >= 0.9
            out.append(
                (
                    f"saturated at 5,000 over {report.filters} filters: {filtered} >= 0.9x {plain}",
                    _verdict(ok),
                    "not run at 5,000" if ok is None else f"{value:.2f}x",
                )
            )
        out.append(_filter_memory_target(report, plain, filtered))
    return out


def _filter_memory_target(report: Report, plain: str, filtered: str) -> tuple[str, str, str]:
    kb = filter_kb(report, plain, filtered)
    memory = report.servers[plain].memory
    connections = memory.connections if memory is not None else 0
    label = f"{filtered}: <= 1 KB RSS per connection for a filter"
    if math.isnan(kb):
        return label, _verdict(None), "-"
    if connections < 1000:  # below, the allocator's granularity is most of the figure
        return label, _verdict(None), f"needs >= 1,000 connections ({kb:+.2f} KB at {connections})"
    return label, _verdict(kb <= 1.0), f"{kb:+.2f} KB at {connections:,} connections (RSS difference)"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "MET" if ok else "MISSED"


def targets(report: Report) -> list[tuple[str, str, str]]:
    """The issues' targets: (target, verdict, what was measured). Issue 9's are over prices; a run of
    pattern alerts (``--channel patterns``) has issue 22's instead."""
    if report.channel == "patterns":
        return filter_targets(report)
    shipped, raised, workers, _ = _legend_names(report)
    out: list[tuple[str, str, str]] = []

    def unavailable(name: str) -> str:
        info = report.servers.get(name)
        return f"{name} not available: {info.error}" if info is not None and not info.available else ""

    for peer, floor in (("litestar", 0.85), ("socketio", 5.0)):
        value = ratio(_saturated(report, raised, 5000), _saturated(report, peer, 5000))
        ok = None if math.isnan(value) else value >= floor
        measured = unavailable(raised) or ("-" if ok is None else f"{value:.2f}x")
        out.append((f"saturated at 5,000: {raised} >= {floor:g}x {peer}", _verdict(ok), measured))
    for name, n, rate, p99 in ((shipped, 5000, 10.0, 150.0), (workers, 10000, 5.0, 250.0)):
        phase = report.phase(name, n, rate)
        label = f"{name}, {n:,} x {rate:g}/s: >= 99% delivered, p99 <= {p99:g} ms"
        if phase is None or phase.error:
            reason = unavailable(name) or (phase.error if phase else "-")
            out.append((label, _verdict(None), reason))
            continue
        ok = phase.delivered_pct >= 99.0 and phase.p99_ms <= p99
        out.append((label, _verdict(ok), f"{phase.delivered_pct:.1f}% delivered, p99 {_ms(phase.p99_ms)} ms"))
    for name in (shipped, workers):
        info = report.servers.get(name)
        label = f"{name}: <= 25 KB RSS per idle connection"
        if info is None or info.memory is None:
            out.append((label, _verdict(None), unavailable(name) or "-"))
            continue
        kb = info.memory.kb_per_connection
        if info.memory.connections < 1000:  # below, the allocator's granularity is most of the figure
            out.append(
                (
                    label,
                    _verdict(None),
                    f"needs >= 1,000 connections ({kb:.1f} KB at {info.memory.connections})",
                )
            )
            continue
        out.append((label, _verdict(kb <= 25.0), f"{kb:.1f} KB at {info.memory.connections:,} connections"))
    return out + issue23_targets(report)


def issue23_targets(report: Report) -> list[tuple[str, str, str]]:
    """Issue 23's targets, each measured where the run has its point (``not measured`` otherwise)."""
    shipped, raised, workers, _ = _legend_names(report)
    out: list[tuple[str, str, str]] = []
    for n in (5000, 10000):
        value = ratio(_saturated(report, raised, n), _saturated(report, "picows", n))
        ok = None if math.isnan(value) else value >= 0.9
        out.append((f"23: saturated at {n:,}: {raised} >= 0.9x picows", _verdict(ok), _x(value)))
    out.append(_paced(report, shipped, 10000, 10.0, 99.0, 150.0))
    out.append(_paced(report, shipped, 19000, 1.0, 100.0, 500.0))
    out.append(_connected(report, shipped, 19000, 30.0))
    info = report.servers.get(shipped)
    memory = info.memory if info is not None else None
    label = f"23: {shipped} at 19,000: <= 12 KB RSS per idle connection"
    if memory is None or memory.connections < 19000:
        out.append((label, _verdict(None), "-"))
    else:
        kb = memory.kb_per_connection
        out.append((label, _verdict(kb <= 12.0), f"{kb:.1f} KB at {memory.connections:,} connections"))
    out.append(_connected(report, workers, 50000, 60.0))
    out.append(_paced(report, workers, 50000, 1.0, 100.0, 1000.0))
    deflated = f"{raised}-deflate"
    on, off = report.phase(deflated, 5000, None), report.phase(raised, 5000, None)
    speed = ratio(_saturated(report, deflated, 5000), _saturated(report, raised, 5000))
    size = math.nan
    if on is not None and off is not None and not on.error and not off.error:
        size = ratio(on.bytes_per_delivery, off.bytes_per_delivery)
    label = "23: deflate at 5,000 saturated: >= 0.8x the msg/s, <= 0.5x the bytes"
    ok = None if math.isnan(speed) or math.isnan(size) else speed >= 0.8 and size <= 0.5
    out.append((label, _verdict(ok), f"msg/s {_x(speed)}, bytes {_x(size)}"))
    return out


def _x(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def _paced(
    report: Report, name: str, n: int, rate: float, delivered: float, p99: float
) -> tuple[str, str, str]:
    """A paced point's target: at least ``delivered`` % delivered with p99 at most ``p99`` ms."""
    label = f"23: {name}, {n:,} x {rate:g}/s: >= {delivered:g}% delivered, p99 <= {p99:g} ms"
    phase = report.phase(name, n, rate)
    if phase is None or phase.error:
        return label, _verdict(None), phase.error if phase is not None and phase.error else "-"
    ok = phase.delivered_pct >= delivered and phase.p99_ms <= p99
    return label, _verdict(ok), f"{phase.delivered_pct:.1f}% delivered, p99 {_ms(phase.p99_ms)} ms"


def _connected(report: Report, name: str, n: int, seconds: float) -> tuple[str, str, str]:
    """All ``n`` connections of ``name`` subscribed within ``seconds``."""
    label = f"23: {name}, {n:,} connections all subscribed within {seconds:g} s"
    info = report.servers.get(name)
    memory = info.memory if info is not None else None
    if memory is None or memory.connections < n:
        return label, _verdict(None), "-"
    took = memory.connect_seconds
    return label, _verdict(took <= seconds), f"{took:.1f} s for {memory.connections:,}"


def bar_lines(report: Report) -> list[str]:
    """What each one-process Legend's bar builder did: the prices of its windows it built into bars (by
    the end of publishing, and once drained), and its figures at the end of the run."""
    out: list[str] = []
    for phase in report.phases:
        if phase.error or phase.bars_built_drained is None:
            continue
        published = phase.prices_published
        by_end = ratio(100 * (phase.bars_built or 0), published)
        out.append(
            f"{phase.server} n={phase.connections:,} {phase.load}: built {phase.bars_built_drained:,} prices into "
            f"bars of the {published:,} it accepted ({_pct(by_end)} by the end of publishing)"
        )
    for name, info in report.servers.items():
        bars = info.bars
        if bars is None:
            continue
        if not bars.get("enabled"):
            out.append(f"{name}: builds no bars (bars.enabled = false)")
            continue
        lag = bars.get("lag")
        out.append(
            f"{name} at the end: prices_built {bars['prices_built']:,}, bars_written {bars['bars_written']:,}, "
            f"bars_published {bars['bars_published']:,}, lag {'-' if lag is None else f'{lag:.1f} s'}, "
            f"failures {bars['failures']}" + (f" ({bars['last_error']})" if bars.get("last_error") else "")
        )
    return out


def targets_issue(report: Report) -> str:
    return "22" if report.channel == "patterns" else "9 and 23"


def filter_memory_lines(report: Report) -> list[str]:
    """Per pair of a ``--filters`` run: what a filter adds to a connection's RSS."""
    out: list[str] = []
    for plain, filtered in filter_pairs(report):
        kb = filter_kb(report, plain, filtered)
        if not math.isnan(kb):
            out.append(
                f"{filtered} - {plain}: {kb:+.2f} KB RSS per connection for a filter "
                f"({report.filters} distinct filters)"
            )
    return out


def summary(report: Report) -> str:
    out = [
        "",
        "Results (delivered msg/s: all clients together; % of offered prices; last: clients that",
        "ended on the last price; latency: publish -> receive; CPU: % of one core)",
    ]
    for n in sorted(report.connections, reverse=True):
        for phase in report.phases:
            if phase.connections == n:
                out.append("  " + describe(phase))
    out += ["", "Memory: RSS per idle subscribed connection (all of a server's processes)"]
    for name, info in report.servers.items():
        if info.memory is not None:
            m = info.memory
            out.append(
                f"  {name:19} {m.kb_per_connection:6.1f} KB  ({m.connections:,} connections, {m.processes} "
                f"process{'es' if m.processes > 1 else ''}, {m.rss_before_kib / 1024:.0f} -> {m.rss_after_kib / 1024:.0f} MiB, "
                f"connected in {m.connect_seconds:.1f} s)"
            )
        elif not info.available:
            out.append(f"  {name:19} not available: {info.error}")
    out += [f"  {line}" for line in filter_memory_lines(report)]
    bars = bar_lines(report)
    if bars:
        out += ["", "Bars: the prices the bar builder built (GET /api/ws/stats, one-process Legend)"]
        out += [f"  {line}" for line in bars]
    out += ["", "Ratios, same run (msg/s: higher is better for the first; CPU and p99: lower is)"]
    out += [f"  {label:58} {'-' if math.isnan(v) else f'{v:.2f}x'}" for label, v in ratios(report)]
    out += ["", f"Targets (issue {targets_issue(report)})"]
    out += [f"  {verdict:12} {target:66} {measured}" for target, verdict, measured in targets(report)]
    for name, text in report.profiles.items():
        out += ["", f"py-spy profile of {name}, saturated:", text]
    loads = [p.others_cpu_pct for p in report.phases if not p.error]
    if loads:
        out.append(
            f"\nOther work on the machine during the windows: median {statistics.median(loads):.0f}%, "
            f"max {max(loads):.0f}% of a core (outside this benchmark)."
        )
    return "\n".join(out)


def markdown(report: Report) -> str:
    """The tables for docs/performance.md: one row per server, one column per connection count."""
    m = report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    counts = sorted(report.connections)
    head = "| server | " + " | ".join(f"{n:,} connections" for n in counts) + " |"
    rule = "| --- |" + " --- |" * len(counts)
    out = [
        f"Run of {m.get('date', '?')}: `{report.command}`, {report.duration_seconds / 60:.0f} min. Legend at "
        f"`{m.get('legend_commit', '?')}`. Machine: {m.get('cores')} × {m.get('cpu')}, Linux {m.get('kernel')}, "
        f"Python {m.get('python')}; {versions}. Load average at the start: "
        f"{', '.join(f'{v:.1f}' for v in m.get('load_average_at_start', ()))}.",
        "",
    ]
    others = [p.others_cpu_pct for p in report.phases if not p.error and p.windows]
    if others:
        out += [
            f"CPU taken by other work on the machine during the windows: median {statistics.median(others):.0f}%, "
            f"max {max(others):.0f}% of one core.",
            "",
        ]

    out += ["| name | server |", "| --- | --- |"]
    out += [f"| {name} | {info.label} |" for name, info in report.servers.items()]
    out.append("")

    def cell(phase: Phase | None, paced: bool) -> str:
        if phase is None:
            return "–"
        if phase.error:
            return "error"
        text = f"{_pct(phase.delivered_pct)}" if paced else f"{phase.delivered_per_s:,.0f} msg/s"
        if paced and phase.accepted_pct < 99.95:
            text += f" (accepted {phase.accepted_pct:.0f}%)"
        text += f", p99 {_ms(phase.p99_ms)} ms, CPU {phase.server_cpu_pct:.0f}%"
        return text + (f", {phase.closed} closed" if phase.closed else "")

    for rate in [None, *report.rates]:
        names = [n for n in report.servers if any(p.server == n and p.rate == rate for p in report.phases)]
        if rate is None:
            out += [
                "**Saturated**: delivered msg/s (all clients), p99 publish→receive, server CPU (% of a core)",
                "",
            ]
        else:
            out += [
                f"**{rate:g} {'alerts' if report.channel == 'patterns' else 'prices'}/s per connection** "
                f"({'patterns' if report.channel == 'patterns' else 'one ticker'}): delivered % of offered (and % of the prices "
                "the server accepted, when it held the publisher back), p99, server CPU",
                "",
            ]
        out += [head, rule]
        for name in names:
            cells = [cell(report.phase(name, n, rate), rate is not None) for n in counts]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["**Memory**: RSS per idle subscribed connection, all of a server's processes", ""]
    out += ["| server | KB per connection | at |", "| --- | --- | --- |"]
    for name, info in report.servers.items():
        if info.memory is not None:
            out.append(f"| {name} | {info.memory.kb_per_connection:.1f} | {info.memory.connections:,} |")
        elif not info.available:
            out.append(f"| {name} | not available: {info.error[:120]} | |")
    out += [f"\n{line}" for line in filter_memory_lines(report)]
    bars = bar_lines(report)
    if bars:
        out += [
            "",
            "**Bars**: the prices the bar builder built (`GET /api/ws/stats`, one-process Legend)",
            "",
        ]
        out += [f"- {line}" for line in bars]
    out += ["", "**Ratios** (same run)", "", "| ratio | value |", "| --- | --- |"]
    out += [f"| {label} | {'–' if math.isnan(v) else f'{v:.2f}×'} |" for label, v in ratios(report)]
    out += ["", f"**Targets** (issue {targets_issue(report)})", "", "| target | verdict | measured |"]
    out += ["| --- | --- | --- |"]
    out += [f"| {t} | {v} | {measured} |" for t, v, measured in targets(report)]
    return "\n".join(out) + "\n"
