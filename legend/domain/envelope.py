"""A published message as it travels: encoded once, sequenced by the backplane, shared by all subscribers."""

from __future__ import annotations

import msgspec


class Envelope(msgspec.Struct, frozen=True):
    """One sequenced message of one stream.

    ``text`` is the exact JSON frame every subscriber receives (it already holds ``channel`` and ``seq``):
    it is made once per instance, never per subscriber. ``key`` is what a conflated message replaces
    within its stream: its ticker (or symbol), so that one stream carrying several symbols keeps the
    newest message of each (see ``conflation_key``). ``at`` is set by the backplane that hands it over.
    ``final`` marks the last value of its key on a conflated stream (a closed bar, see ``is_final``): it is
    never replaced nor dropped, and reaches the client in order with the stream's other messages.
    """

    stream: str
    seq: int
    type: str
    text: str
    key: str = ""
    at: float = 0.0  # when it reached this instance (``time.monotonic()``): delivery latency starts here
    final: bool = False

    def __eq__(self, other: object) -> bool:
        """The same message whatever its ``at``: arrival time is bookkeeping, not part of the message."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return (self.stream, self.seq, self.type, self.text, self.key) == (
            other.stream,
            other.seq,
            other.type,
            other.text,
            other.key,
        )

    def __hash__(self) -> int:
        return hash((self.stream, self.seq, self.text))


def conflation_key(ticker: object, symbol: object = None) -> str:
    """The conflation key of a message from its ``ticker`` and ``symbol`` fields: the first that is a
    non-empty string, else ``""`` (the whole stream conflates to its newest message)."""
    for value in (ticker, symbol):
        if isinstance(value, str) and value:
            return value
    return ""


def is_final(closed: object) -> bool:
    """Whether a message is final from its ``closed`` field: ``true`` (a closed bar) is, anything else is
    not. The wire text says it, so every instance of a cluster reads the same from it."""
    return closed is True


class _Sealed(msgspec.Struct):
    """The fields of a sealed wire text that delivery needs; the rest is never decoded."""

    type: str | None = None
    channel: str | None = None
    seq: int | None = None
    ticker: object = None  # with ``symbol``: the conflation key
    symbol: object = None
    closed: object = None  # ``true``: final


_sealed = msgspec.json.Decoder(_Sealed)


def with_seq(body: bytes, seq: int) -> bytes:
    """Append ``"seq":N`` to an encoded JSON object without decoding it again."""
    return b'%s,"seq":%d}' % (body[:-1], seq)


def seal(
    stream: str, seq: int, kind: str, body: bytes, key: str = "", at: float = 0.0, final: bool = False
) -> Envelope:
    """The envelope of ``body`` (a JSON object that already names its ``channel``) at ``seq``."""
    return Envelope(stream, seq, kind, with_seq(body, seq).decode(), key, at, final)


def unseal(text: bytes, at: float = 0.0, stream: str | None = None) -> Envelope | None:
    """The envelope of a wire text that ``seal`` made: a JSON object with ``seq``, and ``channel`` unless
    the caller knows the ``stream`` (a history entry). Only those fields and the conflation key are
    decoded (and ``closed``: ``final``). None when it is no such text (another program's message, junk); raises UnicodeDecodeError
    for one that is, but not in UTF-8."""
    try:
        wire = _sealed.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    stream = wire.channel if stream is None else stream
    if wire.seq is None or stream is None:
        return None
    key = conflation_key(wire.ticker, wire.symbol)
    return Envelope(stream, wire.seq, wire.type or "", text.decode(), key, at, is_final(wire.closed))
