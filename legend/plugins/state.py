"""What the server knows about each plugin: where it came from, what it implements, how it is doing."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from legend.plugins.status import PluginState
from legend.runtime.supervisor import describe

if TYPE_CHECKING:
    from legend.adapters.sql.migrate import Schema
    from legend.plugins.context import PluginContext
    from legend.plugins.feeds import FeedRunner

__all__ = ["REPEAT_LOG_EVERY", "PluginRecord", "PluginState", "describe"]

log = logging.getLogger("legend.plugins")

REPEAT_LOG_EVERY = 60.0  # seconds between the one-line reports of an error that keeps recurring


@dataclass
class _Repeats:
    """An error that recurs (``PluginRecord.error_repeating``): when it was last logged, how often since."""

    logged_at: float
    since: int = 0


@dataclass
class PluginRecord:
    """One discovered plugin."""

    name: str
    source: str  # "builtin", "entry point (dist 1.0)", "module x.y", "override"
    module: str | None = None
    version: str | None = None
    state: PluginState = PluginState.DISABLED
    chosen: bool = False  # named to run (by `[plugins] enabled`, or by default), even if it failed since
    plugin: object | None = None  # the object registered with pluggy
    hooks: list[str] = field(default_factory=list)
    errors: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    messages_published: int = 0
    messages_rejected: int = 0
    messages_refused: int = 0  # publishes refused because the plugin had failed
    config: Any = None
    config_schema: type[Any] | None = None
    channels: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    routes: list[object] = field(default_factory=list)
    feeds: dict[str, FeedRunner] = field(default_factory=dict)
    storage: Schema | None = None  # its own tables and migrations (``register_storage``)
    context: PluginContext | None = None
    repeats: dict[str, _Repeats] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Still running hooks and callbacks (enabled and not failed)."""
        return self.state is PluginState.ENABLED

    def feed_running(self, name: str) -> bool:
        """True while its feed ``name`` runs on this instance (``PluginContext.feed_running``)."""
        runner = self.feeds.get(name)
        return runner is not None and runner.running

    def error(self, where: str, exc: BaseException | str, *, quiet: bool = False) -> None:
        """Count an error of this plugin (it keeps running) and log it with its traceback."""
        text = exc if isinstance(exc, str) else describe(exc)
        self.errors += 1
        self.last_error = f"{where}: {text}"
        self.last_error_at = datetime.now(UTC)
        if quiet:
            return
        if isinstance(exc, BaseException):
            detail = "".join(traceback.format_exception(exc)).rstrip()
            log.error("plugin %s: %s failed: %s\n%s", self.name, where, text, detail)
        else:
            log.error("plugin %s: %s: %s", self.name, where, text)

    def error_repeating(self, where: str, exc: BaseException | str, now: float) -> None:
        """Count an error that may recur on every call (a price callback that raises on every price): the
        first is logged with its traceback, the next ones at most once per ``REPEAT_LOG_EVERY`` seconds
        (``now`` is a monotonic time) as one line with how many there were. Every one is counted."""
        seen = self.repeats.get(where)
        if seen is None:
            self.repeats[where] = _Repeats(logged_at=now)
            self.error(where, exc)
            return
        self.error(where, exc, quiet=True)
        seen.since += 1
        if now - seen.logged_at >= REPEAT_LOG_EVERY:
            log.error(
                "plugin %s: %s failed %d more time(s) in the last %.0fs (traceback logged once); latest: %s",
                self.name,
                where,
                seen.since,
                now - seen.logged_at,
                exc if isinstance(exc, str) else describe(exc),
            )
            seen.logged_at, seen.since = now, 0

    def fail(self, where: str, exc: BaseException | str) -> None:
        """Count the error and stop running this plugin: its hooks and callbacks are skipped, its feeds
        and tasks are cancelled and its publishes refused from now on (the server and other plugins go on).
        Safe to call from any thread."""
        self.error(where, exc)
        if self.state is not PluginState.BLOCKED:
            self.state = PluginState.FAILED
        log.error("plugin %s is marked failed and skipped from now on", self.name)
        for runner in self.feeds.values():
            runner.halt()
        if self.context is not None:
            self.context._halt()

    def summary(self) -> dict[str, Any]:
        """For ``GET /api/plugins`` and ``legend plugins list``."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "state": self.state.value,
            "hooks": list(self.hooks),
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat().replace("+00:00", "Z")
            if self.last_error_at
            else None,
            "channels": list(self.channels),
            "providers": list(self.providers),
            "routes": len(self.routes),
            "feeds": {name: runner.status() for name, runner in self.feeds.items()},
            "tables": sorted(self.storage.metadata.tables) if self.storage is not None else [],
            "messages_published": self.messages_published,
            "messages_rejected": self.messages_rejected,
            "messages_refused": self.messages_refused,
            "metrics": dict(self.context.metrics) if self.context is not None else {},
        }
