"""Rate limits, driven by a monotonic time the caller passes in (so they test without sleeping)."""

from __future__ import annotations

import math
from collections import OrderedDict


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

    def wait(self) -> float:
        """Seconds until the next token, as of the last ``take``."""
        return max(0.0, (1.0 - self._tokens) / self.rate) if self.rate > 0 else math.inf

    @property
    def full(self) -> bool:
        return self._tokens >= self.burst - 1


EXACT_LIMIT = 64  # budgets up to this are kept exactly; above, in tenths of the window


class SlidingWindow:
    """At most ``limit`` events in any ``window - slack`` seconds: the outbound budget of one connection.

    Unlike a token bucket it never lets a burst of twice the limit through around a window boundary.
    Up to ``EXACT_LIMIT`` it is exact: a ring of the last ``limit`` event times, so that the oldest of
    them says whether one more fits (two list accesses per event; about 140 bytes at 10/s). A larger
    budget (raised for a trusted client) is counted per tenth of the window instead, in constant memory,
    and may let through up to a tenth more than ``limit`` in some window. Events recorded past the
    limit (must-deliver messages are never held back) push out the oldest.

    ``slack`` (half an interval by default: 50 ms at 10/s) is why a feed at exactly the budget is not
    held back: a strict window counts *send* times, so at 10 offered a second the 11th price fits only
    if it comes no earlier, relative to its schedule, than the price ten back did. Timing jitter (a
    fan-out to 5,000 sockets reaches one of them 40 ms later one time than the next) then holds about
    half the prices back, each through the deferred path (queued, timed, written in a second pass); at
    5,000 connections that work delayed the next fan-outs, which made more jitter (measured: 90%
    delivered, p99 950 ms at 5,000 × 10/s, against 100%, p99 84 ms at 9/s). With the slack, jitter up
    to it costs nothing; sustained, the rate stays within ``limit / (window - slack)`` (10.5/s at 10/s).
    """

    __slots__ = (
        "_counts",
        "_next",
        "_roll_at",
        "_slot",
        "_span",
        "_times",
        "_total",
        "_undo",
        "limit",
        "window",
    )

    def __init__(self, limit: int, window: float = 1.0, slack: float | None = None) -> None:
        self.limit = limit
        self.window = window
        self._span = window - (window / limit / 2 if slack is None else slack)  # exact mode's window
        self._next = 0  # exact: the ring index of the oldest kept time, written next
        # a list, not an array: reading a time back is then no new float object (the fan-out stores the
        # one ``now`` of a message in every ring)
        self._times: list[float] = [-math.inf] * limit if limit <= EXACT_LIMIT else []
        self._counts = [0] * 10 if limit > EXACT_LIMIT else []  # coarse: events per tenth of a window
        self._slot = 0  # coarse: the tenth that ``_counts[_slot % 10]`` is counting
        self._roll_at = 0.0  # coarse: when that tenth ends (a compare instead of a call per event)
        self._total = 0
        self._undo = -math.inf  # exact: the time the last ``record`` wrote over (``undo`` puts it back)

    def fits(self, now: float) -> bool:
        """Whether one more event fits now."""
        if self._times:
            return self._times[self._next] <= now - self._span
        self._roll(now)
        return self._total < self.limit

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0 when it fits now)."""
        if self._times:
            return max(0.0, self._times[self._next] + self._span - now)
        self._roll(now)
        if self._total < self.limit:
            return 0.0
        return max(0.0, (self._slot + 1) * self.window / 10 - now)  # when the oldest tenth leaves

    def record(self, now: float) -> None:
        times = self._times
        if times:
            i = self._next
            self._undo = times[i]
            times[i] = now
            self._next = i + 1 if i + 1 < self.limit else 0
            return
        self._roll(now)
        self._counts[self._slot % 10] += 1
        self._total += 1

    def take(self, now: float) -> bool:
        """Record one event if it fits now (``fits`` and ``record`` in one step: the fan-out's budget
        check, once per connection per message)."""
        times = self._times
        if times:
            i = self._next
            if times[i] > now - self._span:
                return False
            self._undo = times[i]
            times[i] = now
            self._next = i + 1 if i + 1 < self.limit else 0
            return True
        if now >= self._roll_at:
            self._roll(now)
        if self._total >= self.limit:
            return False
        self._counts[self._slot % 10] += 1
        self._total += 1
        return True

    def undo(self) -> None:
        """Forget the event recorded last (a write that was taken from the budget, then declined by the
        socket), as if it had not been recorded; at the same ``now`` as that ``record``."""
        times = self._times
        if times:
            i = (self._next or self.limit) - 1
            times[i] = self._undo
            self._next = i
            return
        self._counts[self._slot % 10] -= 1
        self._total -= 1

    def _roll(self, now: float) -> None:
        slot = int(now * 10 / self.window)
        self._roll_at = (slot + 1) * self.window / 10
        if slot == self._slot:
            return
        counts = self._counts
        for passed in range(self._slot + 1, min(slot, self._slot + 10) + 1):
            self._total -= counts[passed % 10]
            counts[passed % 10] = 0
        self._slot = slot


class KeyedBuckets:
    """A ``TokenBucket`` per key (a user, an address), the least recently used forgotten past
    ``max_keys`` (a forgotten key starts again with a full bucket: memory stays bounded when keys are
    many, at the price of leniency towards them)."""

    __slots__ = ("_buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0.0 when the key may go on (one token spent), else the seconds until it may."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(buckets) > self.max_keys:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        if bucket.take(now):
            return 0.0
        return bucket.wait()

    def __len__(self) -> int:
        return len(self._buckets)
