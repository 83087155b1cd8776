"""The PNG: delivered msg/s and p99 latency against connections, one line per server, one column per load."""

from __future__ import annotations

import math
from pathlib import Path

from bench.fanout.report import Report

STYLE = {
    "legend": ("tab:blue", "-"),
    "legend-max": ("tab:blue", "--"),
    "legend-max-nobars": ("tab:cyan", "--"),
    "litestar": ("tab:green", "-"),
    "picows": ("tab:gray", "-"),
    "socketio": ("tab:red", "-"),
}


def _style(name: str) -> tuple[str, str]:
    if name.startswith("legend-w"):
        return ("tab:purple", "--" if name.endswith("-max") else "-")
    return STYLE.get(name, ("black", ":"))


def plot(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads: list[float | None] = [None, *report.rates]
    figure, axes = plt.subplots(2, len(loads), figsize=(4.2 * len(loads), 6.4), squeeze=False)
    for column, rate in enumerate(loads):
        top, bottom = axes[0][column], axes[1][column]
        for name in report.servers:
            points = sorted(
                (p.connections, p.delivered_per_s, p.p99_ms)
                for p in report.phases
                if p.server == name and p.rate == rate and not p.error and p.windows
            )
            if not points:
                continue
            colour, line = _style(name)
            xs = [n for n, _, _ in points]
            top.plot(xs, [v for _, v, _ in points], line, color=colour, marker="o", label=name)
            kept = [(n, p99) for n, _, p99 in points if not math.isnan(p99)]
            if kept:
                bottom.plot(*zip(*kept, strict=True), line, color=colour, marker="o", label=name)
        if rate is not None and report.connections:
            xs = sorted(report.connections)
            top.plot(xs, [n * rate for n in xs], ":", color="black", linewidth=1, label="offered")
        title = "saturated" if rate is None else f"{rate:g} prices/s per connection"
        top.set_title(title, fontsize=10)
        top.set_ylabel("delivered msg/s")
        bottom.set_ylabel("p99 publish→receive (ms)")
        bottom.set_yscale("log")
        bottom.set_xlabel("connections")
        top.set_ylim(bottom=0)
        for ax in (top, bottom):
            ax.set_xticks(sorted(report.connections))
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=8)
        top.legend(fontsize=7)
    figure.suptitle("Legend Realtime fan-out, one ticker, load generator on the same machine", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)
