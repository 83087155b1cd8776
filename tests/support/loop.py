"""Letting the event loop run what a test started, without wall-clock time: the one ``settle``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

TURNS = 20  # enough for every chain of tasks the unit tests start (writer, close, release, bus handlers)
MAX_TURNS = 1000


async def settle(until: Callable[[], bool] | None = None) -> None:
    """Turn the loop ``TURNS`` times, so that the tasks a test started run as far as they can; with
    ``until``, turn it until that holds instead (and fail if it never does within ``MAX_TURNS``)."""
    if until is None:
        for _ in range(TURNS):
            await asyncio.sleep(0)
        return
    for _ in range(MAX_TURNS):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
