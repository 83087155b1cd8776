"""Rate limits, driven by a monotonic time the caller passes in (so they test without sleeping)."""

from __future__ import annotations

from collections import deque


class TokenBucket:
    """Inbound limit: ``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def full(self) -> bool:
        return self._tokens >= self.burst - 1


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds: the outbound budget of one connection.

    Unlike a token bucket it never lets a burst of twice the limit through around a window boundary.
    """

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        # Only the last ``limit`` times are ever read: a bounded deque keeps a connection that receives
        # only must-deliver messages (recorded, never waited on) from growing without end.
        self._times: deque[float] = deque(maxlen=limit)

    def _expire(self, now: float) -> None:
        times = self._times
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0 when it fits now)."""
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[-self.limit] + self.window - now

    def record(self, now: float) -> None:
        self._times.append(now)
