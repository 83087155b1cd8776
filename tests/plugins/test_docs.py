"""The plugin author's guide covers every hook with an example that runs: each Python example of
docs/plugins.md is loaded as a plugin into a real (in-process) server, which must start it cleanly."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from legend.bootstrap import Services
from legend.plugins.hookspecs import HOOKS

from .helpers import eventually

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


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
    build: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins: dict[str, object] = {}
    for index, code in enumerate(examples()):
        if "@hookimpl" not in code:
            continue
        module = types.ModuleType(f"guide_example_{index}")
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
    ticks = next(r for r in records if "ticks" in r.channels)
    await eventually(lambda: ticks.messages_published >= 1, what="the feed example to publish")
    await services.stop()
    assert all(r.errors == 0 for r in records), [(r.name, r.last_error) for r in records]
