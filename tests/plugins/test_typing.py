"""Hook implementations can be annotated with the ``Register*`` protocols ``legend.plugins`` exports, and
mypy --strict checks what a plugin registers: a well-typed plugin (and the example package) passes, a
wrong registration is reported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from legend.bootstrap import Services

from .samples import typed

ROOT = Path(__file__).resolve().parents[2]
Build = Callable[..., Services]


def mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_typed_plugins_pass_mypy_strict() -> None:
    checked = mypy(
        ROOT / "tests/plugins/samples/typed.py",
        ROOT / "examples/legend-sentiment/legend_sentiment/__init__.py",
        ROOT / "examples/legend-sentiment/legend_sentiment/storage.py",
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_reports_a_wrong_registration(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_plugin.py"
    wrong.write_text(
        "from legend.plugins import RegisterChannel, RegisterFeed, RegisterProvider, hookimpl\n"
        "\n"
        "@hookimpl\n"
        "def register_channels(register: RegisterChannel) -> None:\n"
        '    register("prices")\n'
        "\n"
        "@hookimpl\n"
        "def register_feeds(register: RegisterFeed) -> None:\n"
        '    register("feed", lambda context: None)\n'
        "\n"
        "@hookimpl\n"
        "def register_quote_providers(register: RegisterProvider) -> None:\n"
        '    register("p", 42)\n',
        encoding="utf-8",
    )
    checked = mypy(wrong)
    assert checked.returncode == 1
    errors = {
        int(line.split(":")[1]): line.split(": error: ", 1)[1]
        for line in reversed(checked.stdout.splitlines())
        if ": error: " in line and "[arg-type]" in line
    }
    assert sorted(errors) == [5, 9, 13], checked.stdout
    assert errors[5].startswith('Argument 1 to "__call__" of "RegisterChannel" has incompatible type "str"')
    assert errors[9].startswith('Argument 2 to "__call__" of "RegisterFeed" has incompatible type')
    assert errors[13].startswith('Argument 2 to "__call__" of "RegisterProvider" has incompatible type "int"')


async def test_the_typed_plugin_runs(build: Build) -> None:
    services = build({"enabled": ["typed"]}, plugins={"typed": typed})
    assert services.plugins is not None
    found = services.plugins.records["typed"]
    assert (found.state.value, found.last_error, found.version) == ("enabled", None, "2.3.4")
    assert found.channels == ["readings"] and found.providers == ["flat"] and len(found.routes) == 1
    await services.start()
    assert found.state.value == "enabled"
