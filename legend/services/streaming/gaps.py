"""Telling the subscribers of a stream which of its messages are lost to them (``gap``).

After an outage longer than a stream's history, the backplane cannot deliver what was published
meanwhile (``StreamGap``, on the bus). Each local subscriber of a must-deliver stream hears the exact
range at once, filtered subscribers too (they cannot know whether the lost messages matched), and every
``service_status`` ``ok`` it gets names the stream instead of claiming completeness, until it had the
stream's history again (``Session.gaps``: a subscribe clears it), however often the status flaps
meanwhile. A conflated stream that cannot carry a final message (prices) is not told: its newest value
wins anyway.
"""

from __future__ import annotations

import logging

from legend.domain.events import StreamGap
from legend.domain.messages import Gap, encode
from legend.domain.timefmt import iso
from legend.services.streaming.service import StreamingService
from legend.services.streaming.session import Session

log = logging.getLogger("legend.status")


class GapNotices:
    """Sends ``gap`` frames, and says which of a connection's streams still have one open."""

    def __init__(self, streaming: StreamingService) -> None:
        self.streaming = streaming
        self.sent = 0  # gap frames sent

    def stream_gap(self, event: StreamGap) -> None:
        """Tell every local subscriber of ``event.stream``, when it is must-deliver (``StreamGap``)."""
        spec = self.streaming.registry.spec_of_stream(event.stream)
        if spec is None or not spec.must_deliver or (event.finals_kept and not spec.keeps(final=False)):
            return
        sessions = self.streaming.index.sessions(event.stream)
        if not sessions:
            return
        frame = Gap(
            channel=event.stream,
            from_seq=event.from_seq,
            to_seq=event.to_seq,
            timestamp=iso(self.streaming.clock.now()),
        )
        text = encode(frame).decode()
        push = self.streaming.fanout.push_control
        for session in sessions:
            push(session, text, "gap")
            if session.gaps is None:
                session.gaps = set()
            session.gaps.add(event.stream)
        self.sent += len(sessions)
        log.warning(
            "%s: messages %d-%d are lost: told %d connections",
            event.stream,
            event.from_seq,
            event.to_seq,
            len(sessions),
        )

    @staticmethod
    def open(session: Session) -> list[str]:
        """The streams ``session`` was told of a gap in, still subscribes to and has not had a history
        of since, sorted."""
        if not session.gaps:
            return []
        subscribed = {stream for sub in session.subscriptions.values() for stream in sub.streams}
        session.gaps &= subscribed
        return sorted(session.gaps)
