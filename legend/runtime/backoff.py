"""Capped exponential backoff: how long a retry loop waits after each failure in a row.

``Backoff`` keeps the count of failures in a row: ``next()`` gives the delay after one more (``initial``,
then ``factor`` times longer each time, at most ``maximum``, optionally jittered by ±``jitter``),
``reset()`` starts again from ``initial`` after a success. ``exponential`` is the same delay as a plain
function, for a loop that keeps its own count or whose base delay changes from one round to the next.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable


def exponential(initial: float, attempt: int, *, factor: float = 2.0, maximum: float = math.inf) -> float:
    """``initial * factor ** attempt``, at most ``maximum`` (``attempt`` 0 gives ``initial``)."""
    try:
        delay = initial * factor ** max(attempt, 0)
    except OverflowError:  # far past any maximum
        return maximum
    return min(delay, maximum)


class Backoff:
    """Delays between retries: ``initial`` after the first failure, ``factor`` times longer after each
    next one, up to ``maximum``; each multiplied by a random factor in [1 - jitter, 1 + jitter] so that
    many clients that failed together do not retry together."""

    def __init__(
        self,
        initial: float,
        *,
        factor: float = 2.0,
        maximum: float = math.inf,
        jitter: float = 0.0,
        uniform: Callable[[float, float], float] = random.uniform,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if initial < 0 or factor < 1 or maximum < 0 or not 0 <= jitter < 1:
            raise ValueError(
                f"backoff needs initial >= 0, factor >= 1, maximum >= 0 and 0 <= jitter < 1 "
                f"(got {initial}, {factor}, {maximum}, {jitter})"
            )
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.jitter = jitter
        self.failures = 0  # failures in a row: what the next delay grows from
        self._uniform = uniform
        self._sleep = sleep

    @property
    def current(self) -> float:
        """The delay the next failure gets, before jitter."""
        return exponential(self.initial, self.failures, factor=self.factor, maximum=self.maximum)

    def next(self) -> float:
        """One more failure: the delay to wait before the next try (jittered)."""
        delay = self.current
        self.failures += 1
        if self.jitter:
            delay *= self._uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return delay

    def reset(self) -> None:
        """A success: the next failure waits ``initial`` again."""
        self.failures = 0

    async def sleep(self) -> float:
        """Wait ``next()`` seconds; returns how long."""
        delay = self.next()
        await self._sleep(delay)
        return delay

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self.initial}, factor={self.factor}, maximum={self.maximum}, "
            f"jitter={self.jitter}, failures={self.failures})"
        )
