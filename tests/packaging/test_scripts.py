"""The README's test command fails when a check fails: ``scripts/test.sh`` runs under ``set -e``, where a failing
command on the left of ``&&`` does not stop the script. Each check runs here on a tree of its own whose one Python
file fails exactly that check, with this checkout's installed ``.venv`` and ``node_modules``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What test.sh reads before its checks: the scripts, the inputs of its install stamps (copied with their times,
# so the stamps of the installed .venv and node_modules still hold), and ruff's settings.
COPIED = (
    "scripts",
    "requirements.txt",
    "requirements-dev.txt",
    "pyproject.toml",
    "package.json",
    "package-lock.json",
    "examples/legend-sentiment/pyproject.toml",
)
UNUSED_IMPORT = "import os\n"  # ruff check: F401
UNFORMATTED = "x = {  'a':1 }\n"  # passes ruff check, fails ruff format --check


def _tree(tmp_path: Path, source: str) -> Path:
    tree = tmp_path / "checkout"
    for name in COPIED:
        origin, target = ROOT / name, tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target)
        else:
            shutil.copy2(origin, target)
    for folder in ("legend", "tests", "bench", "fuzz"):
        (tree / folder).mkdir()
    (tree / "legend" / "probe.py").write_text(source)
    for installed in (".venv", "node_modules"):
        (tree / installed).symlink_to(ROOT / installed)
    # The JavaScript checks' settings, one browser module and one node test: tsc, eslint and node --test pass.
    for name in ("jsconfig.json", "eslint.config.js"):
        shutil.copy2(ROOT / name, tree / name)
    (tree / "web" / "static" / "js").mkdir(parents=True)
    (tree / "web" / "static" / "js" / "probe.js").write_text("export const probe = 1;\n")
    (tree / "tests" / "js").mkdir()
    (tree / "tests" / "js" / "probe.test.js").write_text(
        "import test from 'node:test';\n\ntest('probe', () => {});\n"
    )
    return tree


@pytest.mark.parametrize("source", [UNUSED_IMPORT, UNFORMATTED], ids=["ruff-check", "ruff-format"])
def test_a_lint_failure_fails_the_test_command(tmp_path: Path, source: str) -> None:
    tree = _tree(tmp_path, source)
    result = subprocess.run(
        ["bash", "scripts/test.sh"],
        cwd=tree,
        env={**os.environ, "PYTHON": "false"},  # nothing may be (re)installed: the stamps must hold
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "== ruff" in output, output
    assert "installing" not in output, output
    assert result.returncode != 0, output
    assert "== mypy" not in output, output  # it stopped at the failing check


def test_a_type_error_fails_the_test_command_though_pytest_passes(tmp_path: Path) -> None:
    """mypy (with tsc, eslint and node --test) runs beside pytest: its failure must still fail the command,
    after pytest ran (``--version`` here: pytest passes at once)."""
    tree = _tree(tmp_path, 'X: int = "one"\n')  # clean for ruff, an error for mypy --strict
    result = subprocess.run(
        ["bash", "scripts/test.sh", "--version"],
        cwd=tree,
        env={**os.environ, "PYTHON": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "== pytest" in output and "pytest " in output, output  # pytest ran and passed
    assert 'Incompatible types in assignment (expression has type "str"' in output, output
    assert "FAILED: the static check above" in output, output
    assert result.returncode != 0, output


def test_a_clean_tree_passes_the_test_command(tmp_path: Path) -> None:
    """Every check passing (pytest ``--version``, the rest on a clean tree) exits 0: the command's clean-up on
    exit once turned every green run into exit status 1 (a failing ``kill`` of the finished checks under
    ``set -e``), which only CI's exit status showed."""
    tree = _tree(tmp_path, "X = 1\n")
    result = subprocess.run(
        ["bash", "scripts/test.sh", "--version"],
        cwd=tree,
        env={**os.environ, "PYTHON": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "== node --test" in output and "FAILED" not in output, output
    assert result.returncode == 0, output


def test_the_fixture_tree_passes_lint_when_clean(tmp_path: Path) -> None:
    """The same tree with a clean file gets past ruff (so the failures above are the probe's, not the tree's)."""
    tree = _tree(tmp_path, "X = 1\n")
    ruff = ROOT / ".venv" / "bin" / "ruff"
    for args in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [str(ruff), *args, "legend", "tests", "bench", "fuzz"], cwd=tree, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
