"""The domain stays pure: no framework, Redis, SQLAlchemy or HTTP imports."""

from __future__ import annotations

import ast
from pathlib import Path

import legend.domain

FORBIDDEN = ("litestar", "redis", "sqlalchemy", "uvicorn", "httpx", "aiosqlite", "asyncpg", "jwt", "pandas",
             "exchange_calendars", "legend.adapters", "legend.app", "legend.bootstrap", "legend.settings")  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_and_ports_import_nothing_from_the_outside() -> None:
    root = Path(legend.domain.__file__).parent.parent
    offenders = []
    for folder in ("domain", "ports"):
        for path in sorted((root / folder).rglob("*.py")):
            for name in imports_of(path):
                if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                    offenders.append(f"{path.relative_to(root)} imports {name}")
    assert not offenders, offenders
