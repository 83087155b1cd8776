"""Draining an instance that is stopping (a deploy): when each connection is told to go, and what it is told.

Closing every client of an instance at once sends all of them to the other instances in the same second:
their connect-rate limits see a flood, and their history reads a burst. The drain closes the connections one
by one, evenly spaced over ``server.drain_seconds`` (in a random order, so that no user, address or age goes
first), each with close code 1001 and a reason that says how soon to come back:
``server shutting down; reconnect_after_ms=<n>`` (docs/protocol.md, "Close codes").
"""

from __future__ import annotations

import re

RECONNECT_AFTER_MS = 1000  # the hint: wait this long (plus the client's own jittered backoff) to come back
RECONNECT_GRACE = 60.0  # seconds after the drain within which the announced reconnects are honoured
_HINT = re.compile(r"reconnect_after_ms=(\d{1,9})")


def going_away_reason(reconnect_after_ms: int = RECONNECT_AFTER_MS) -> str:
    """The close reason of a drained connection (well under the 123 bytes a close reason may take)."""
    return f"server shutting down; reconnect_after_ms={max(0, int(reconnect_after_ms))}"


def reconnect_hint(reason: str) -> int | None:
    """The ``reconnect_after_ms`` a close reason carries, or None (for clients written in Python)."""
    found = _HINT.search(reason)
    return int(found.group(1)) if found else None


def drain_schedule(count: int, window: float) -> list[float]:
    """Seconds after the start of the drain at which to close each of ``count`` connections: evenly spaced,
    the first at once and the last at ``window × (count - 1) / count``, so the closes (and so the
    reconnects elsewhere) arrive at ``count / window`` a second. A window of 0 closes all at once."""
    if count <= 0:
        return []
    step = max(0.0, window) / count
    return [i * step for i in range(count)]


def drain_window(drain_seconds: float, graceful_shutdown_seconds: float, close_timeout: float) -> float:
    """The drain window actually used: ``drain_seconds``, but short enough that the last close handshake
    (which may take ``close_timeout``) ends within ``graceful_shutdown_seconds``."""
    return max(0.0, min(drain_seconds, graceful_shutdown_seconds - close_timeout))
