"""A seconds-long run of the fan-out benchmark, every server kind, so that the harness cannot rot.

The figures of so short a run mean nothing; what is checked is that the run completes, that every server
delivered to every client, and that the table, the JSON and the PNG come out. The full run stays out of
the test suite (bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.fanout.kinds import kinds

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 40


def test_every_server_delivers_and_the_report_is_written(tmp_path: Path) -> None:
    out_json, out_png, out_md = tmp_path / "fanout.json", tmp_path / "fanout.png", tmp_path / "fanout.md"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fanout",
            *("--connections", str(CONNECTIONS), "--seconds", "1", "--rounds", "1", "--warmup", "0.5"),
            *("--rates", "10", "--sample-every", "2", "--json", str(out_json), "--plot", str(out_png)),
            *("--markdown", str(out_md)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Ratios, same run" in run.stdout and "Targets (issue 9 and 23)" in run.stdout
    assert "23: saturated at 5,000: legend-max >= 0.9x picows" in run.stdout  # issue 23's, each named
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(out_json.read_text())

    expected = {k.name for k in kinds(2)}
    assert set(report["servers"]) == expected
    for name, server in report["servers"].items():
        assert server["available"], (name, server["error"])
        assert server["memory"]["connections"] == CONNECTIONS, name
        phases = [p for p in report["phases"] if p["server"] == name]
        kind = next(k for k in kinds(2) if k.name == name)
        assert [p["rate"] for p in phases] == ([None] if kind.saturated else []) + (
            [10.0] if kind.paced else []
        )
        for phase in phases:
            where = f"{name} {phase['rate'] or 'saturated'}: {phase}"
            assert not phase["error"] and phase["closed"] == 0 and phase["failures"] == 0, where
            assert phase["delivered_per_s"] > 0 and phase["samples"] > 0, where
            assert phase["p99_ms"] > 0, where
            assert phase["clients_on_last_pct"] == 100.0, where
            if phase["rate"] is not None:  # paced on a shared machine: most of what was offered
                assert phase["delivered_pct"] >= 80.0, where
            elif name.startswith("legend"):  # saturated: Legend may merge a pending price (newest wins)
                assert phase["delivered_pct"] >= 80.0 and phase["server_cpu_pct"] > 0, where
            else:  # saturated: every accepted price reached every client
                assert phase["delivered_pct"] == 100.0 and phase["server_cpu_pct"] > 0, where
    assert report["ratios"] and report["targets"]
    # Bars on against bars off (issue 24): the bench's prices really go into bars where bars are on.
    servers = report["servers"]
    assert servers["legend-max-nobars"]["bars"] == {"enabled": False}
    assert servers["legend-max"]["bars"]["enabled"] and servers["legend-max"]["bars"]["failures"] == 0
    (on,) = [p for p in report["phases"] if p["server"] == "legend-max"]
    (off,) = [p for p in report["phases"] if p["server"] == "legend-max-nobars"]
    assert 0 < on["bars_built_drained"] <= on["prices_published"], on
    assert off["bars_built_drained"] is None, off
    assert any(
        r["label"].startswith(f"n={CONNECTIONS} saturated msg/s: bars on / bars off")
        for r in report["ratios"]
    )
    assert "Bars: the prices the bar builder built" in run.stdout
    # Deflate on / off (issue 23): the deflate clients get every price compressed, and fewer bytes.
    (deflated,) = [p for p in report["phases"] if p["server"] == "legend-max-deflate"]
    assert deflated["compressed_pct"] == 100.0 and on["compressed_pct"] == 0.0, (deflated, on)
    assert deflated["bytes_per_delivery"] < on["bytes_per_delivery"], (deflated, on)
    assert any(
        r["label"].startswith(f"n={CONNECTIONS} saturated bytes per delivery: deflate / plain")
        for r in report["ratios"]
    )

    tables = out_md.read_text()
    assert "**Saturated**" in tables and "| picows |" in tables and "**Targets**" in tables
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fanout",
            "--from-json",
            str(out_json),
            "--plot",
            str(tmp_path / "again.png"),
            "--markdown",
            str(tmp_path / "again.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "again.md").read_text() == tables


def test_pattern_alerts_over_filters_reach_every_client(tmp_path: Path) -> None:
    """``--filters`` (issue 22): Legend's clients on ``patterns`` over distinct filters that all match get
    every alert, as the unfiltered ones do; the ratio, the filter's memory and issue 22's targets come out."""
    out_json = tmp_path / "filters.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fanout",
            *("--filters", "5", "--servers", "legend-max,legend-max-filtered"),
            *("--connections", str(CONNECTIONS), "--seconds", "1", "--rounds", "2", "--warmup", "0.5"),
            *("--sample-every", "2", "--json", str(out_json), "--plot", str(tmp_path / "filters.png")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out_json.read_text())
    assert report["channel"] == "patterns" and report["filters"] == 5
    assert set(report["servers"]) == {"legend-max", "legend-max-filtered"}
    for name in report["servers"]:
        (phase,) = [p for p in report["phases"] if p["server"] == name]
        where = f"{name}: {phase}"
        assert not phase["error"] and phase["closed"] == 0 and phase["failures"] == 0, where
        # must-deliver alerts that every filter matches: every accepted alert reached every client
        assert phase["delivered_pct"] == 100.0 and phase["clients_on_last_pct"] == 100.0, where
        assert phase["strays"] == 0 and phase["samples"] > 0 and phase["server_cpu_pct"] > 0, where
    labels = [r["label"] for r in report["ratios"]]
    assert f"n={CONNECTIONS} saturated msg/s: legend-max-filtered / legend-max" in labels
    assert [t["target"] for t in report["targets"]] == [
        "saturated at 5,000 over 5 filters: legend-max-filtered >= 0.9x legend-max",
        "legend-max-filtered: <= 1 KB RSS per connection for a filter",
    ]
    assert "Targets (issue 22)" in run.stdout
    assert "KB RSS per connection for a filter (5 distinct filters)" in run.stdout

    refused = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--filters", "5", "--servers", "legend-max,litestar"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "litestar has no subscription filters" in refused.stderr
