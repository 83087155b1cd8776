"""The architecture holds: the layers import one way (the model and the runtime depend on nothing else of
legend/; the ports on the model; the services on model, ports and runtime; adapters, plugins and the
composition root above), the layers below stay pure (no framework, Redis, SQLAlchemy or HTTP imports), no
package and no module of legend/ imports another in a cycle, and no module under legend/ grows past 500
lines."""

from __future__ import annotations

import ast
import itertools
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import pytest

import legend.domain

FORBIDDEN = ("litestar", "redis", "sqlalchemy", "uvicorn", "httpx", "aiosqlite", "asyncpg", "jwt", "pandas",
             "exchange_calendars", "legend.adapters", "legend.app", "legend.bootstrap", "legend.settings")  # fmt: skip


ROOT = Path(legend.domain.__file__).parent.parent  # legend/


def module_name(path: Path) -> str:
    """``legend/services/streaming/service.py`` -> ``legend.services.streaming.service``; a package's
    ``__init__.py`` -> the package."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_statements(path: Path, *, runtime_only: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    """``(module, names)`` for every import in a file, at any depth: ``("a.b", ())`` for ``import a.b``,
    ``("a", ("b", "c"))`` for ``from a import b, c``; relative imports resolved to absolute ones.
    ``runtime_only`` leaves out what is imported under ``if TYPE_CHECKING:`` (its ``else:`` runs)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, tuple[str, ...]]] = []

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if runtime_only and _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.extend((alias.name, ()) for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            names = tuple(alias.name for alias in node.names)
            if node.level == 0:
                found.append((node.module or "", names))
                return
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            found.append((f"{base}.{node.module}" if node.module else base, names))

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def imports_of(path: Path) -> set[str]:
    """The modules a file imports from (``a`` for ``from a import b``), absolute."""
    return {module for module, _ in import_statements(path)}


def test_import_statements_resolve_relative_imports_and_skip_type_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "legend")
    path = tmp_path / "legend" / "services" / "streaming" / "fanout.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import outbox\n"
        "from ...domain.envelope import Envelope\n"
        "if TYPE_CHECKING:\n"
        "    from legend.ports.clock import Clock\n"
        "else:\n"
        "    import json\n"
        "def later():\n"
        "    import legend.app\n",
        encoding="utf-8",
    )
    runtime = [
        ("typing", ("TYPE_CHECKING",)),
        ("legend.services.streaming", ("outbox",)),
        ("legend.domain.envelope", ("Envelope",)),
        ("json", ()),
        ("legend.app", ()),
    ]
    assert import_statements(path, runtime_only=True) == runtime
    assert ("legend.ports.clock", ("Clock",)) in import_statements(path)


def test_the_layers_import_nothing_from_the_outside() -> None:
    offenders = []
    for folder in ("domain", "runtime", "ports", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in imports_of(path):
                if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


# The layers, bottom up; a module belongs to the first whose package holds it, else it is above them all
# (adapters, plugins, bootstrap, app, server, cli, settings...), where anything below may be imported.
LAYERS = {
    "legend.domain": "model",
    "legend.runtime": "runtime",
    "legend.ports": "ports",
    "legend.services": "services",
}
MAY_IMPORT = {  # each layer imports itself and what is listed: the imports point one way
    "model": set(),
    "runtime": set(),
    "ports": {"model"},
    "services": {"model", "ports", "runtime"},
}
OUTSIDE_MAY_IMPORT = {"model": ("msgspec",), "runtime": ()}  # beyond the standard library


def layer(module: str) -> str | None:
    """The layer of a module of legend/ (None: above the layers)."""
    return next(
        (name for package, name in LAYERS.items() if module == package or module.startswith(package + ".")),
        None,
    )


def imported_modules(path: Path, modules: Mapping[str, Path], *, runtime_only: bool = False) -> list[str]:
    """What a file imports, one module each: ``from a import b`` is ``a.b`` when that is a module of legend/
    (``from legend.domain import closecodes``), else ``a``."""
    found = []
    for module, names in import_statements(path, runtime_only=runtime_only):
        found += [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module]
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def test_layer_knows_each_package_of_the_layers() -> None:
    assert layer("legend.domain") == layer("legend.domain.envelope") == "model"
    assert layer("legend.services.streaming.fanout") == "services"
    assert layer("legend.runtime.supervisor") == "runtime"
    assert layer("legend.ports.clock") == "ports"
    assert (
        layer("legend.domainx") is None and layer("legend.adapters.logs") is None and layer("legend") is None
    )


def test_each_layer_imports_only_the_layers_below_it() -> None:
    """The model (legend/domain/) and the runtime (legend/runtime/) import nothing else of legend/; the ports
    import the model; the services import the model, the ports and the runtime. Type-only imports count
    too: a layer knows nothing of what is above it. Outside legend/, the model imports only the standard
    library and msgspec, the runtime only the standard library."""
    modules = all_modules()
    offenders = []
    for source, path in modules.items():
        here = layer(source)
        if here is None:
            continue
        for target in imported_modules(path, modules):
            top = target.partition(".")[0]
            if top == "legend":
                there = layer(target)
                if there != here and there not in MAY_IMPORT[here]:
                    offenders.append(f"{source} ({here}) imports {target} ({there or 'above the layers'})")
            elif here in OUTSIDE_MAY_IMPORT and top not in (
                *sys.stdlib_module_names,
                *OUTSIDE_MAY_IMPORT[here],
            ):
                offenders.append(f"{source} ({here}) imports {target}")
    assert not offenders, (
        "the imports point one way: services -> ports -> model, services -> runtime; what needs a port is a "
        f"service (legend/services/), what spawns tasks or retries is runtime (legend/runtime/): {offenders}"
    )


Edge = tuple[str, str]  # (a module of the importing package, the module it imports)


def package_graph() -> dict[str, dict[str, Edge]]:
    """Which package imports which at run time: ``{a: {b: (the first module of a that imports b, what it
    imports)}}``.

    A node is a package (a directory with ``__init__.py``), or a module directly in legend/ (settings,
    bootstrap, app, ...). An import's target is the module it names: ``from a import b`` is ``a.b`` when
    that is a module, else ``a``."""
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(path): path for path in paths}

    def node(module: str) -> str:
        if modules[module].name == "__init__.py" or module.count(".") == 1:
            return module
        return module.rpartition(".")[0]

    graph: dict[str, dict[str, Edge]] = {}
    for path in paths:
        source = module_name(path)
        for module, names in import_statements(path, runtime_only=True):
            targets = [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module]
            for target in targets:
                if target in modules and node(target) != node(source):
                    graph.setdefault(node(source), {}).setdefault(node(target), (source, target))
    return graph


def cycles(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """A shortest cycle through each node that lies on one, each cycle once and written from its smallest
    node: ``[a, b, c, a]``."""
    found: dict[tuple[str, ...], list[str]] = {}
    for start in sorted(graph):
        way = {start: [start]}  # a shortest path from start to each node reached so far
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if start in graph.get(here, {}):  # breadth first: the first way back is a shortest one
                cycle = way[here]
                low = cycle.index(min(cycle))
                rotated = cycle[low:] + cycle[:low]
                found.setdefault(tuple(rotated), [*rotated, rotated[0]])
                break
            for there in sorted(graph.get(here, {})):
                if there not in way:
                    way[there] = [*way[here], there]
                    queue.append(there)
    return list(found.values())


def test_cycles_finds_each_cycle_once() -> None:
    graph = {"a": {"b": 0}, "b": {"a": 0, "c": 0}, "c": {"a": 0}, "d": {"a": 0}, "e": {"e": 0}}
    assert cycles(graph) == [["a", "b", "a"], ["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b": 0}, "b": {"c": 0}}) == []


def test_no_import_cycle_among_packages() -> None:
    """No package of legend/ imports another that imports it back, directly or not. Imports under
    ``if TYPE_CHECKING:`` do not count (they do not run); imports inside functions do."""
    graph = package_graph()
    report = []
    for cycle in cycles(graph):
        report.append(" -> ".join(cycle))
        for a, b in itertools.pairwise(cycle):
            source, target = graph[a][b]
            report.append(f"    {a} -> {b}: {source} imports {target}")
    if report:
        pytest.fail("import cycles among packages (move what one edge needs):\n" + "\n".join(report))


def module_graph() -> dict[str, dict[str, None]]:
    """Which module of legend/ imports which at run time (imports inside functions count; those under
    ``if TYPE_CHECKING:`` do not)."""
    modules = all_modules()
    graph: dict[str, dict[str, None]] = {}
    for source, path in modules.items():
        for target in imported_modules(path, modules, runtime_only=True):
            if target in modules and target != source:
                graph.setdefault(source, {})[target] = None
    return graph


def test_no_import_cycle_among_modules() -> None:
    """No module of legend/ imports another that imports it back, directly or not, even within a package
    and even from inside a function (a deferred import hides a cycle, it does not remove it): what both
    need goes in a third module."""
    report = [" -> ".join(cycle) for cycle in cycles(module_graph())]
    if report:
        pytest.fail("import cycles among modules:\n" + "\n".join(report))


def test_no_import_cycle_among_the_plugin_modules_even_for_typing() -> None:
    """Within legend/plugins/ no module imports another that imports it back, counting the imports under
    ``if TYPE_CHECKING:`` too: a type-only import back is still two modules that cannot be understood (or
    split) one without the other. The record holds the context and the feeds; they see it through the
    narrow ``PluginStatus`` (plugins/status.py), and the context sees the manager as a ``ContextHost``."""
    modules = all_modules()
    graph: dict[str, dict[str, None]] = {}
    for source, path in modules.items():
        if not source.startswith("legend.plugins."):
            continue
        for target in imported_modules(path, modules):
            if target.startswith("legend.plugins.") and target in modules and target != source:
                graph.setdefault(source, {})[target] = None
    assert "legend.plugins.manager" in graph  # the graph is there to check
    report = [" -> ".join(cycle) for cycle in cycles(graph)]
    if report:
        pytest.fail(
            "import cycles among legend/plugins/ modules (type-only imports count):\n" + "\n".join(report)
        )


def test_nothing_below_the_composition_root_imports_it() -> None:
    """Adapters and plugins are handed what they use by ``legend.bootstrap`` and ``legend.app``: importing
    either back (for ``Services``, say) would put them and the root in one import cycle."""
    root = Path(legend.domain.__file__).parent.parent
    offenders = [
        f"{path.relative_to(root)} imports {name}"
        for folder in ("adapters", "plugins")
        for path in sorted((root / folder).rglob("*.py"))
        for name in imports_of(path)
        if name in ("legend.bootstrap", "legend.app")
    ]
    assert not offenders, offenders


def test_the_adapters_know_nothing_of_the_plugins() -> None:
    """``legend.plugins`` builds on the adapters (its HTTP helpers for plugin routes, the SQL tables and
    migrations for plugin storage), so the adapters never import it, even for typing or inside a function:
    what an adapter shows of the plugins (the Prometheus section) it is handed by the composition root."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "adapters").rglob("*.py"))
        for name in imports_of(path)
        if name == "legend.plugins" or name.startswith("legend.plugins.")
    ]
    assert not offenders, offenders


MAX_MODULE_LINES = 500  # a module longer than this mixes concerns: split it by responsibility
# Modules allowed over the limit while they are being split; each entry must name a file that exists.
OVER_THE_LIMIT_FOR_NOW: dict[str, str] = {}


def test_no_module_under_legend_is_over_500_lines() -> None:
    lengths = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(ROOT.rglob("*.py"))
    }
    gone = sorted(name for name in OVER_THE_LIMIT_FOR_NOW if name not in lengths)
    assert not gone, f"{gone} no longer exist: drop them from OVER_THE_LIMIT_FOR_NOW"
    too_long = [
        f"legend/{name}: {count} lines"
        for name, count in lengths.items()
        if count > MAX_MODULE_LINES and name not in OVER_THE_LIMIT_FOR_NOW
    ]
    assert not too_long, f"over {MAX_MODULE_LINES} lines (split by responsibility): {too_long}"
