"""A few seconds of the atheris target (fuzz/frames.py) from its committed seeds, so that it cannot rot and
each run tries some new inputs; the long run is documented in fuzz/frames.py and docs/reliability.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.fuzzing import PROFILE

ROOT = Path(__file__).resolve().parents[2]
RUNS = 10_000 if PROFILE == "ci" else 2_000_000


def test_the_frame_target_finds_nothing_from_its_seeds(tmp_path: Path) -> None:
    found = tmp_path / "corpus"
    found.mkdir()
    seed = [] if PROFILE != "ci" else ["-seed=1"]  # ci: the same inputs every run
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.frames",
            f"-runs={RUNS}",
            *seed,
            f"-dict={ROOT / 'fuzz' / 'frames.dict'}",
            f"-artifact_prefix={tmp_path}/",
            str(found),
            str(ROOT / "fuzz" / "corpus" / "frames"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    output = run.stdout + run.stderr
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert run.returncode == 0 and not crashes, f"{crashes}\n{output[-4000:]}"
    assert f"Done {RUNS} runs" in output, output[-2000:]
