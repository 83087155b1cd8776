"""Telling connected clients when live delivery degrades and when it recovers (``service_status``).

Only ``/ready`` used to say that the backplane was down; a trader watching the dashboard saw prices stop
without knowing why. Now every connection hears about each change, and a connection made while degraded
hears it right after its acknowledgement. The reason is for people, and names no internal address.
"""

from __future__ import annotations

import logging

from legend.domain.messages import ServiceStatus
from legend.domain.timefmt import iso
from legend.services.streaming.service import StreamingService
from legend.services.streaming.session import Session

log = logging.getLogger("legend.status")

BACKPLANE = "backplane"
DEGRADED_REASON = (
    "The server lost its connection to the message backplane: live updates may be delayed, and "
    "publishing is refused until it is back. Your connection stays open."
)
RECOVERED_REASON = "Live updates restored; anything published meanwhile has been delivered."


class ServiceStatusNotifier:
    """Remembers whether the backplane is healthy and announces each change to every session."""

    def __init__(self, streaming: StreamingService) -> None:
        self.streaming = streaming
        self.degraded = False
        self.changes = 0

    def backplane_health(self, ok: bool) -> None:
        """The backplane's health changed (``BackplaneHealthChanged``, on the bus): tell every session."""
        if ok is not self.degraded:
            return
        self.degraded = not ok
        self.changes += 1
        sent = self.streaming.send_control(self.message())
        log.info("backplane %s: told %d connections", "degraded" if self.degraded else "recovered", sent)

    def greet(self, session: Session) -> None:
        """A new session learns at once that delivery is degraded (nothing is sent while healthy)."""
        if self.degraded:
            self.streaming.send_control(self.message(), session)

    def message(self) -> ServiceStatus:
        return ServiceStatus(
            status="degraded" if self.degraded else "ok",
            component=BACKPLANE,
            reason=DEGRADED_REASON if self.degraded else RECOVERED_REASON,
            timestamp=iso(self.streaming.clock.now()),
        )
