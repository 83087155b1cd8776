"""The plugin author's guide covers every hook with an example that runs: each Python example of
docs/plugins.md is loaded as a plugin into a real (in-process) server, which must start it cleanly. An
example revision script (a block that starts with ``# migrations/<file>.py``) lands in the ``migrations``
folder beside the examples, where the storage example finds it: the server creates its table."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect

from legend.bootstrap import Services
from legend.plugins.hookspecs import HOOKS

from .helpers import eventually

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
REVISION = re.compile(r"# (migrations/\w+\.py)\n")


def examples() -> list[str]:
    return BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def test_every_hook_has_a_section_and_an_example_in_the_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert HOOKS, "no hook specifications found"
    missing_sections = [hook for hook in HOOKS if f"### `{hook}`" not in text]
    assert not missing_sections, f"docs/plugins.md has no section for {missing_sections}"
    defined = {
        hook for code in examples() for hook in HOOKS if re.search(rf"^(async )?def {hook}\(", code, re.M)
    }
    assert set(HOOKS) - defined == set(), f"no example implements {sorted(set(HOOKS) - defined)}"


async def test_the_examples_run_as_plugins(
    build: Callable[..., Services], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plugins: dict[str, object] = {}
    home = tmp_path / "guide"  # where the examples are, as files of one package would be
    revisions = [(found.group(1), code) for code in examples() if (found := REVISION.match(code))]
    assert revisions, "no example revision script"
    for name, code in revisions:
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(code, encoding="utf-8")
    for index, code in enumerate(examples()):
        if "@hookimpl" not in code:
            continue
        module = types.ModuleType(f"guide_example_{index}")
        module.__file__ = str(home / f"{module.__name__}.py")
        monkeypatch.setitem(sys.modules, module.__name__, module)  # as an imported module would be
        exec(compile(code, f"docs/plugins.md example {index}", "exec"), module.__dict__)
        plugins[module.__name__] = module
    services = build({"enabled": list(plugins)}, plugins=plugins)
    await services.start()
    assert services.plugins is not None
    records = [services.plugins.records[name] for name in plugins]
    assert [(r.name, r.state.value, r.last_error) for r in records if r.state.value != "enabled"] == []
    implemented = {hook for r in records for hook in r.hooks}
    assert implemented == set(HOOKS)
    assert {"dice", "earnings", "ticks"} <= set(services.registry.names())
    stored = [r for r in records if r.storage is not None]
    assert [sorted(r.storage.metadata.tables) for r in stored if r.storage] == [["earnings_dates"]]
    assert services.database is not None
    async with services.database.read() as conn:
        assert "earnings_dates" in await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    ticks = next(r for r in records if "ticks" in r.channels)
    await eventually(lambda: ticks.messages_published >= 1, what="the feed example to publish")
    await services.stop()
    assert all(r.errors == 0 for r in records), [(r.name, r.last_error) for r in records]
