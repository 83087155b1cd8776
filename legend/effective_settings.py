"""The effective settings as ``legend config check`` prints them: every key, defaults included, the plugins'
tables as each plugin validated them, credentials redacted (``legend.adapters.logs.redact_settings``), as
TOML that ``legend.toml`` could hold, or as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

import msgspec

from legend.adapters.logs import redact_settings
from legend.settings import Settings

UNSET = "(unset)"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def effective_settings(settings: Settings, plugins: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``settings`` as plain data (dates kept as dates), credentials redacted; ``plugins`` (``[plugins]``'
    own keys, and plugin name -> its validated settings Struct) in place of the raw ``[plugins]`` table."""
    tree: dict[str, Any] = msgspec.to_builtins(settings, builtin_types=(date, datetime, time))
    if plugins is not None:
        tree["plugins"] = msgspec.to_builtins(dict(plugins), builtin_types=(date, datetime, time))
    redacted = redact_settings(tree)
    assert isinstance(redacted, dict)
    return redacted


def to_json(tree: Mapping[str, Any]) -> str:
    return json.dumps(tree, indent=2, default=str)


def to_toml(tree: Mapping[str, Any]) -> str:
    """TOML of nested tables: one ``[section]`` per table, a value TOML has no word for (None: unset) as
    a comment, so every key is shown."""
    lines: list[str] = []
    _table(lines, (), tree)
    return "\n".join(lines).strip() + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    subtables = [(key, value) for key, value in table.items() if isinstance(value, dict) and value]
    if path:
        lines.append(f"[{'.'.join(_key(part) for part in path)}]")
    for key, value in table.items():
        if isinstance(value, dict) and value:
            continue
        if value is None:
            lines.append(f"# {_key(key)} = {UNSET}")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    if path:
        lines.append("")
    for key, value in subtables:
        _table(lines, (*path, key), value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + pairs + "}"
    return json.dumps(str(value), ensure_ascii=False)
