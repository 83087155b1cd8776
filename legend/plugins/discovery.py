"""Finding the plugins: the built-ins, ``legend.plugins`` entry points, ``[plugins] modules`` and objects
handed to ``bootstrap(plugins=...)``; the kill switch; and each plugin's version.

The built-in plugins are found by module path, so a checkout works without being installed (they are
declared as ``legend.plugins`` entry points too). ``LEGEND_DISABLED_PLUGINS=a,b`` blocks plugins before
they are even imported (the manager calls pluggy's ``set_blocked``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from legend import __version__

log = logging.getLogger("legend.plugins")

GROUP = "legend.plugins"
KILL_SWITCH = "LEGEND_DISABLED_PLUGINS"
BUILTINS: Mapping[str, str] = {
    "news": "legend.plugins.builtin.news.plugin",
    "portfolio": "legend.plugins.builtin.portfolio.plugin",
    "scanner": "legend.plugins.builtin.scanner.plugin",
}


@dataclass
class Candidate:
    """A plugin found, not yet imported: ``load()`` imports it."""

    name: str
    source: str  # builtin, entry point (dist version), module, override
    module: str
    load: Callable[[], object]
    version: str | None


def blocked_names(environ: Mapping[str, str]) -> set[str]:
    """Names in the kill switch ``LEGEND_DISABLED_PLUGINS``."""
    return {name.strip() for name in environ.get(KILL_SWITCH, "").split(",") if name.strip()}


def discover(
    modules: Mapping[str, str],
    overrides: Mapping[str, object],
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[Candidate]:
    """Every plugin there is, by name: the built-ins, then entry points (``entry_points``, default: the
    installed ones; one whose name a built-in takes is ignored), then ``[plugins] modules``, then
    ``overrides`` (the later wins a name)."""
    found: dict[str, Candidate] = {}
    for name, module in BUILTINS.items():
        found[name] = Candidate(name, "builtin", module, _importer(module), __version__)
    points = entry_points if entry_points is not None else importlib.metadata.entry_points(group=GROUP)
    for point in points:
        dist = point.dist
        version = dist.version if dist is not None else None
        known = found.get(point.name)
        if known is not None:
            if known.module != point.value:
                log.error(
                    "plugin %s: entry point %s is ignored: the name is taken by %s %s",
                    point.name,
                    point.value,
                    known.source,
                    known.module,
                )
            continue
        source = f"entry point ({dist.name} {version})" if dist is not None else "entry point"
        found[point.name] = Candidate(point.name, source, point.value, point.load, version)
    for name, module in modules.items():
        found[name] = Candidate(name, "module", module, _importer(module), None)
    for name, plugin in overrides.items():
        module = getattr(plugin, "__name__", type(plugin).__name__)
        found[name] = Candidate(name, "override", module, _given(plugin), None)
    return list(found.values())


def plugin_version(plugin: object, *, search_installed: bool = False) -> str | None:
    """The version of a plugin that was not found through an entry point: the ``__version__`` of its
    module or of that module's top-level package, else the version of the installed distribution named
    like that package (``acme_plugin`` -> ``acme-plugin``), else (``search_installed``: reading every
    installed distribution's file list, slow) of the one distribution that provides the package; None
    when there is none."""
    module_name = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
    top = module_name.partition(".")[0]
    for holder in (plugin, sys.modules.get(module_name), sys.modules.get(top)):
        version = getattr(holder, "__version__", None)
        if isinstance(version, str) and version:
            return version
    try:
        named = importlib.metadata.distribution(top)
    except importlib.metadata.PackageNotFoundError:
        named = None
    if named is not None:
        declared = (named.read_text("top_level.txt") or top).split()
        if top in declared:
            return named.version
    if search_installed:
        providers = set(importlib.metadata.packages_distributions().get(top, ()))
        if len(providers) == 1:
            return importlib.metadata.version(providers.pop())
    return None


def _given(plugin: object) -> Callable[[], object]:
    return lambda: plugin


def _importer(module: str) -> Callable[[], object]:
    def load() -> object:
        path, _, attribute = module.partition(":")
        loaded: object = importlib.import_module(path)
        for part in filter(None, attribute.split(".")):
            loaded = getattr(loaded, part)
        return loaded

    return load
