"""Log lines that hostile or broken input can trigger, at most once a second per kind."""

from __future__ import annotations

import logging
import time


class LogLimiter:
    """One logger whose warnings are rate-limited per kind: whatever a peer sends, the log grows by at
    most one line a second for each kind of problem; the next line says how many were left out."""

    def __init__(self, name: str, interval: float = 1.0) -> None:
        self.log = logging.getLogger(name)
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Log ``message`` unless ``kind`` was logged less than ``interval`` ago; True if logged."""
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return False
        self._last[kind] = now
        skipped = self._skipped.pop(kind, 0)
        if skipped:
            message += " (%d more like it not logged)"
            args = (*args, skipped)
        self.log.warning(message, *args)
        return True
