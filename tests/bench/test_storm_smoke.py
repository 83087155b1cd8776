"""A seconds-long ``python -m bench.fanout --storm`` (issue 23), so that the restart storm's harness cannot
rot: 60 clients, the server SIGTERMed and started again, every client resumed gap-free and counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 60


def test_the_storm_runs_and_every_client_resumes_gap_free(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.fanout", "--storm", "--connections", str(CLIENTS), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Restart storm: 60 clients" in run.stdout and "target (issue 23)" in run.stdout
    result = json.loads(out.read_text())
    assert result["clients"] == CLIENTS and result["resumed"] == CLIENTS, result
    assert result["gap_free"] == CLIENTS and result["met"], result
    assert result["refused_clients"] == 0 and not result["refusals"], result
    assert result["close_codes"].get("1001 server shutting down", 0) >= CLIENTS, result
    assert result["acknowledged"] > 2 and result["final_seq"] >= result["acknowledged"], result
    assert len(result["logs"]) == 2 and all(Path(p).exists() for p in result["logs"])
