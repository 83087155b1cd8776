"""A plugin whose register_channels raises: it must be marked failed, and nothing else may suffer."""

from __future__ import annotations

from typing import Any

from legend.plugins import hookimpl


@hookimpl
def register_channels(register: Any) -> None:
    raise RuntimeError("boom in register_channels")
