"""What a plugin's context and its feeds know of the plugin's record: its state (``PluginState``) and the
narrow ``PluginStatus`` they update. ``PluginRecord`` (``legend.plugins.state``) holds the context and the
feeds; they see it through this protocol only, so no module of ``legend.plugins`` imports another back."""

from __future__ import annotations

import enum
from typing import Protocol


class PluginState(enum.Enum):
    """``enabled``: runs; ``disabled``: installed, not named in ``[plugins] enabled``; ``blocked``: the kill
    switch ``LEGEND_DISABLED_PLUGINS`` names it (never even imported); ``failed``: it raised, hung or was
    invalid while loading, starting or running, and was skipped from then on: its feeds and tasks are
    stopped and what it still tries to publish is refused."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    BLOCKED = "blocked"
    FAILED = "failed"


class PluginStatus(Protocol):
    """A plugin's record as its context and feed runners use it: whether it still runs, its message
    counters, and its errors."""

    name: str
    state: PluginState
    messages_published: int
    messages_rejected: int
    messages_refused: int

    @property
    def active(self) -> bool: ...

    def error(self, where: str, exc: BaseException | str, *, quiet: bool = False) -> None: ...

    def feed_running(self, name: str) -> bool: ...
