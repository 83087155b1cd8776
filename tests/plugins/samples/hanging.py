"""A plugin whose register_channels never returns (until ``RELEASE`` is set)."""

from __future__ import annotations

import threading
from typing import Any

from legend.plugins import ChannelSpec, hookimpl

RELEASE = threading.Event()
REGISTERED_LATE: list[BaseException] = []


@hookimpl
def register_channels(register: Any) -> None:
    RELEASE.wait()
    try:
        register(ChannelSpec(name="too_late"))
    except BaseException as exc:  # refused: the hook already timed out
        REGISTERED_LATE.append(exc)
