"""The short soak (bench/soak.py): a real server, prices and alert triggers flowing while 8 clients churn
for 15 s; RSS and asyncio tasks back at their baseline afterwards, every stored trigger received by its
owner exactly once. The long run is documented in bench/soak.py and docs/reliability.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_leaves_nothing_behind_and_loses_no_trigger(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--users", "8", "--seconds", "15", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert report["resumes"] >= 8 and report["dropped"] >= 1  # it did churn, both ways
    assert report["triggers_stored"] > 0 and report["triggers_received"] == report["triggers_stored"]
    assert report["tasks_end"] <= report["tasks_base"]
    assert report["rss_end_mib"] - report["rss_base_mib"] <= report["rss_tolerance_mib"]
