"""The tables of the enabled plugins, without a server: for ``legend db`` and the supervisor of several
workers, which migrate before any worker starts. Apart from ``storage`` because it loads the plugins
(``PluginManager``), which import ``storage``: kept here, no module imports the other back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from legend.plugins.manager import PluginManager

if TYPE_CHECKING:
    from legend.adapters.sql.migrate import Schema
    from legend.settings import Settings


def enabled_schemas(settings: Settings) -> list[Schema]:
    """The tables of every enabled plugin that has some, for these settings (``legend db``, the supervisor
    of several workers): the plugins are loaded, and ``register_storage`` is the only hook that runs. Raises
    SettingsError for invalid ``[plugins]`` settings, as ``serve`` would."""
    manager = PluginManager.from_settings(settings)
    manager.register_storage()
    return manager.schemas()
