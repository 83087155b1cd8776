"""Telling connected clients when live delivery degrades and when it recovers (``service_status``).

Only ``/ready`` used to say that the backplane was down; a trader watching the dashboard saw prices stop
without knowing why. Now every connection hears about each change, and a connection made while degraded
hears it right after its acknowledgement. The reason is for people, and names no internal address. An
``ok`` never claims completeness to a connection that was told of a gap (``gaps``) and has not reloaded
that stream's history since: it says ``complete: false`` and names the streams.
"""

from __future__ import annotations

import logging

from legend.domain.messages import ServiceStatus, encode
from legend.domain.timefmt import iso
from legend.services.streaming.gaps import GapNotices
from legend.services.streaming.service import StreamingService
from legend.services.streaming.session import Session

log = logging.getLogger("legend.status")

BACKPLANE = "backplane"
DEGRADED_REASON = (
    "The server lost its connection to the message backplane: live updates may be delayed, and "
    "publishing is refused until it is back. Your connection stays open."
)
RECOVERED_REASON = "Live updates restored; anything published meanwhile has been delivered."
INCOMPLETE_REASON = (
    "Live updates restored, but some messages published meanwhile are lost (see the gap messages): "
    "reload the history of the streams named in gaps."
)


class ServiceStatusNotifier:
    """Remembers whether the backplane is healthy and announces each change to every session."""

    def __init__(self, streaming: StreamingService) -> None:
        self.streaming = streaming
        self.degraded = False
        self.changes = 0
        self.gaps = GapNotices(streaming)  # gap frames, and the gaps each connection has open

    def backplane_health(self, ok: bool) -> None:
        """The backplane's health changed (``BackplaneHealthChanged``, on the bus): tell every session."""
        if ok is not self.degraded:
            return
        self.degraded = not ok
        self.changes += 1
        sent = self.streaming.send_control(self.message()) if self.degraded else self._recovered()
        log.info("backplane %s: told %d connections", "degraded" if self.degraded else "recovered", sent)

    def _recovered(self) -> int:
        """``ok`` to every session: the common text to most, one naming its gaps to a session told of any."""
        common = self.message()
        text = encode(common).decode()
        push, open_gaps = self.streaming.fanout.push_control, self.gaps.open
        sessions = list(self.streaming.sessions.values())
        for session in sessions:
            gaps = open_gaps(session)
            if gaps:
                self.streaming.send_control(self.message(gaps), session)
            else:
                push(session, text, "service_status")
        return len(sessions)

    def greet(self, session: Session) -> None:
        """A new session learns at once that delivery is degraded (nothing is sent while healthy)."""
        if self.degraded:
            self.streaming.send_control(self.message(), session)

    def message(self, gaps: list[str] | None = None) -> ServiceStatus:
        """The status now; an ``ok`` says ``complete``, and names ``gaps`` (streams) when not."""
        timestamp = iso(self.streaming.clock.now())
        if self.degraded:
            return ServiceStatus(
                status="degraded", component=BACKPLANE, reason=DEGRADED_REASON, timestamp=timestamp
            )
        return ServiceStatus(
            status="ok",
            component=BACKPLANE,
            reason=INCOMPLETE_REASON if gaps else RECOVERED_REASON,
            timestamp=timestamp,
            complete=not gaps,
            gaps=gaps or None,
        )
