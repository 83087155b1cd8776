"""The ``[plugins]`` settings: the section's own keys, the per-plugin tables, and their errors with the full
key path (``[plugins.news] unknown setting `feds` - at `$.plugins.news.feds```)."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec
import pluggy

from legend.plugins.calls import call_bounded
from legend.plugins.state import PluginRecord
from legend.settings import SettingsError

log = logging.getLogger("legend.plugins")

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class PluginOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The keys of ``[plugins]`` itself; every table beside them is one plugin's settings."""

    enabled: list[str] | None = None  # None: the built-ins and the `modules`
    modules: dict[str, str] = msgspec.field(default_factory=dict)  # name -> importable module path
    hook_timeout: PositiveFloat = 10.0  # seconds any one hook call may take
    # the longest a subscribe waits for a channel's `authorize` (the loop waits: keep it short)
    authorize_timeout: PositiveFloat = 0.1
    restart_delay: PositiveFloat = 1.0  # first wait before a failed feed restarts, doubling …
    restart_max_delay: PositiveFloat = 60.0  # … up to this


RESERVED = frozenset(PluginOptions.__struct_fields__)


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`(?: - at `\$([^`]*)`)?$")
_AT = re.compile(r" - at `\$([^`]*)`$")


def config_error(name: str, exc: msgspec.ValidationError) -> str:
    """A plugin settings error with the key's full path: ``… - at `$.plugins.news.feeds[0].url```."""
    text = str(exc)
    unknown = _UNKNOWN_FIELD.match(text)
    if unknown:
        return f"[plugins.{name}] unknown setting `{unknown.group(1)}` - at `$.plugins.{name}{unknown.group(2) or ''}.{unknown.group(1)}`"
    at = _AT.search(text)
    if at:
        return f"[plugins.{name}] {text[: at.start()]} - at `$.plugins.{name}{at.group(1)}`"
    return f"[plugins.{name}] {text} - at `$.plugins.{name}`"


def parse_plugin_settings(raw: Mapping[str, Any]) -> tuple[PluginOptions, dict[str, dict[str, Any]]]:
    """Split ``[plugins]`` into its own options and the per-plugin tables; raises SettingsError."""
    options: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key in RESERVED:
            options[key] = value
        elif isinstance(value, dict):
            tables[key] = value
        else:
            raise SettingsError(
                f"[plugins] unknown setting `{key}` (plugin settings go in a [plugins.{key}] table; "
                f"the keys of [plugins] are {', '.join(sorted(RESERVED))}) - at `$.plugins.{key}`"
            )
    try:
        parsed = msgspec.convert(options, PluginOptions, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        raise SettingsError(
            f"[plugins] {text[: at.start()]} - at `$.plugins{at.group(1)}`" if at else f"[plugins] {text}"
        ) from None
    return parsed, tables


def configure(
    record: PluginRecord,
    impl: pluggy.HookImpl | None,
    table: Mapping[str, Any] | None,
    hook_timeout: float,
    problem: Callable[[str], None],
) -> None:
    """Validate the plugin's ``table`` with its ``config_schema`` (``impl``), and keep the validated
    instance as ``record.config``; a settings error goes to ``problem``. For a plugin that is not
    enabled only the table is checked: its broken schema is logged, not held against it."""
    running = record.active

    def broken(where: str, error: BaseException | str) -> None:
        if running:
            record.fail(where, error)
        else:
            record.error(where, error)

    def invalid(message: str) -> None:
        problem(message)
        broken("settings", message)

    schema: Any = None
    if impl is not None:
        try:
            schema = call_bounded(impl.function, {}, hook_timeout)
        except Exception as exc:
            broken("config_schema", exc)
            return
    if inspect.iscoroutine(schema):
        schema.close()
        broken("config_schema", "must be a plain function, not a coroutine function")
        return
    if schema is None:
        if table:
            invalid(
                f"[plugins.{record.name}] plugin {record.name} takes no settings - at `$.plugins.{record.name}`"
            )
        return
    if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        broken("config_schema", f"must return a msgspec.Struct type, not {schema!r}")
        return
    if not schema.__struct_config__.forbid_unknown_fields:
        log.warning(
            "plugin %s: its settings Struct does not forbid unknown fields (typos go unseen)", record.name
        )
    record.config_schema = schema
    try:
        config = msgspec.convert(table or {}, schema, strict=False)
    except msgspec.ValidationError as exc:
        invalid(config_error(record.name, exc))
        return
    except Exception as exc:  # the plugin's Struct itself is broken (an unresolvable annotation)
        broken("config_schema", exc)
        return
    if running:
        record.config = config


def effective_configs(records: Mapping[str, PluginRecord], tables: Mapping[str, Any]) -> dict[str, Any]:
    """Each plugin's settings as its ``config_schema`` reads them (defaults included), by name, for
    ``legend config check``; a plugin that takes no settings, or whose table is invalid, is left out."""
    configs: dict[str, Any] = {}
    for name, record in records.items():
        if record.config is not None:
            configs[name] = record.config
        elif record.config_schema is not None:
            try:
                configs[name] = msgspec.convert(tables.get(name) or {}, record.config_schema, strict=False)
            except Exception:  # reported as a problem by ``configure`` already
                continue
    return configs
