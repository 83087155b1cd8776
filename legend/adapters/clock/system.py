"""The real Clock: wall time in UTC and the process's monotonic clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    """Reads the operating system's clocks; everything else takes a Clock so tests can freeze time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
