"""Per-stream sequence numbers and bounded history: what a resume since a seq gets (every backplane), and
the in-process backplane's store."""

from __future__ import annotations

from collections import deque

from legend.domain.envelope import Envelope, seal


class StreamLog:
    """The sequence counter and the last ``size`` envelopes of every stream.

    At most ``max_streams`` streams are remembered; the one published to least recently is forgotten
    first, so subscribing to junk symbols one after another cannot grow memory without end. A client
    that later resumes a forgotten stream is told it was not recovered.
    """

    def __init__(self, max_streams: int = 20_000) -> None:
        self.max_streams = max_streams
        self._seq: dict[str, int] = {}
        self._history: dict[str, deque[Envelope]] = {}

    def append(
        self,
        stream: str,
        kind: str,
        body: bytes,
        history_size: int,
        key: str = "",
        at: float = 0.0,
        final: bool = False,
    ) -> Envelope:
        seq = self._seq.pop(stream, 0) + 1
        self._seq[stream] = seq  # re-inserted: the dict's order is least recently published first
        if len(self._seq) > self.max_streams:
            oldest = next(iter(self._seq))
            del self._seq[oldest]
            self._history.pop(oldest, None)
        envelope = seal(stream, seq, kind, body, key, at, final)
        if history_size > 0:
            ring = self._history.get(stream)
            if ring is None or ring.maxlen != history_size:
                ring = deque(ring or (), maxlen=history_size)
                self._history[stream] = ring
            ring.append(envelope)
        return envelope

    def last_seq(self, stream: str) -> int:
        return self._seq.get(stream, 0)

    def after(self, stream: str, since: int | None) -> tuple[list[Envelope], bool]:
        """Envelopes after ``since`` and whether they cover everything since then."""
        return window(list(self._history.get(stream, ())), self.last_seq(stream), since)

    def streams(self) -> int:
        return len(self._seq)


def window(history: list[Envelope], last_seq: int, since: int | None) -> tuple[list[Envelope], bool]:
    """What a stream's history (oldest first; ``last_seq`` its newest seq) holds after ``since``, and
    whether that covers everything since then: all of it when ``since`` is None; all of it, but not
    complete, when the stream restarted below the client's position."""
    if since is None:
        return history, True
    if since > last_seq:  # the stream restarted below the client's position: give what there is
        return history, False
    kept = [env for env in history if env.seq > since]
    oldest = kept[0].seq if kept else last_seq + 1
    return kept, oldest <= since + 1
