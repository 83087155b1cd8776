"""A plugin with a misspelt hook implementation: check_pending-style validation must catch it."""

from __future__ import annotations

from typing import Any

from legend.plugins import hookimpl


@hookimpl
def register_chanels(register: Any) -> None:  # sic
    pass
