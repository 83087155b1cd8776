"""The wire protocol: every client→server and server→client message of the specification (docs/protocol.md), as msgspec Structs.

Field names are the specification's contract (docs/protocol.md). Beyond it, channel messages also carry ``channel`` (their stream)
and ``seq``; ``subscription`` replies carry ``channel`` and ``streams``; ``history`` carries ``channel``,
``seq`` and, when the client asked to resume, ``recovered``; ``error`` carries a machine-readable ``code``;
``service_status`` says when live delivery degrades and recovers.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# ───────────────────────────── client → server ─────────────────────────────


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=False):
    """Subscribe to a channel; ``since`` resumes from a sequence number (or one per stream); ``interval``
    names the bars' interval (``bars`` only); ``filter`` keeps only the messages it matches."""

    channel: str
    ticker: str | None = None
    since: int | dict[str, int] | None = None
    interval: str | None = None
    filter: Any = None  # a JSON object: which of the channel's messages to send (``domain.filters``)


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type"):
    """Stop receiving a channel."""

    channel: str
    ticker: str | None = None
    interval: str | None = None


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    """Heartbeat; answered with ``pong``."""


ClientMessage = Subscribe | Unsubscribe | Ping
CLIENT_TYPES = ("subscribe", "unsubscribe", "ping")


class _Typed(msgspec.Struct):
    type: Any = None


class ProtocolError(ValueError):
    """A client frame the server cannot act on; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_decoder = msgspec.json.Decoder(ClientMessage)
_typed_decoder = msgspec.json.Decoder(_Typed)
_any_decoder = msgspec.json.Decoder()


def _too_deep() -> ProtocolError:
    # msgspec recurses once per nesting level, even through fields it skips: a 2 KB frame of nested
    # arrays used to raise RecursionError out of the decoder and end the connection without a word.
    return ProtocolError("invalid_message", "Message nested too deeply")


def _shown(value: object) -> str:
    """A client's value as an error message quotes it: at most 40 characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def decode_client_message(frame: bytes | str) -> ClientMessage:
    """Decode one client frame; raises ProtocolError with the specification's wording where it has one."""
    try:
        message: ClientMessage = _decoder.decode(frame)
        return message
    except msgspec.ValidationError as exc:
        error = exc
    except msgspec.DecodeError as exc:
        raise ProtocolError("invalid_json", f"Invalid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    # A typed decoder stops at the first value of the wrong type, before it has read the rest: '0:' and
    # '{"type":5 x' are malformed JSON (the second's DecodeError used to end the connection unanswered).
    try:
        typed = _typed_decoder.decode(frame)
    except msgspec.ValidationError:
        try:
            _any_decoder.decode(frame)
        except msgspec.DecodeError as exc:
            raise ProtocolError("invalid_json", f"Invalid JSON: {exc}") from None
        raise ProtocolError("invalid_message", "Message must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("invalid_json", f"Invalid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    kind = typed.type
    if kind is None:
        raise ProtocolError("invalid_message", "Missing message type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"Unknown message type: {_shown(kind)}")
    raise ProtocolError("invalid_message", f"Invalid {kind} message: {error}")


# ───────────────────────────── server → client ─────────────────────────────


class _Out(msgspec.Struct, tag_field="type", omit_defaults=True, kw_only=True):
    pass


class Connection(_Out, tag="connection"):
    status: str
    connection_id: str
    user_id: str
    timestamp: str
    heartbeat_timeout: float | None = None
    quote_provider: str | None = None  # where prices come from (``quotes.provider``)
    simulated_prices: bool = False  # sent only when true: the prices are the demo's walk, not a market's


class Subscription(_Out, tag="subscription"):
    action: Literal["subscribed", "unsubscribed"]
    channel: str
    timestamp: str
    ticker: str | None = None
    streams: list[str] = msgspec.field(default_factory=list)
    note: str | None = None  # e.g. that a ticker's prices are simulated
    interval: str | None = None  # ``bars`` only
    filter: dict[str, Any] | None = None  # the subscription's filter now (``or`` of every subscribe's)


class History(_Out, tag="history"):
    channel: str
    messages: list[msgspec.Raw]
    seq: int
    timestamp: str
    ticker: str | None = None
    recovered: bool | None = None
    interval: str | None = None  # ``bars`` only


class Pong(_Out, tag="pong"):
    timestamp: str


class Error(_Out, tag="error"):
    message: str
    timestamp: str
    code: str | None = None
    # the (un)subscribe refused, as the client named it (errors about other frames leave them out)
    channel: str | None = None
    ticker: str | None = None
    interval: str | None = None


class ServiceStatus(_Out, tag="service_status"):
    """Live delivery degraded (``component`` unavailable: updates may be delayed) or recovered (``ok``);
    sent to every connection on each change, and to a new connection while degraded. An ``ok`` says
    whether everything published meanwhile was delivered (``complete``); when not, ``gaps`` names the
    streams the connection was sent a ``gap`` for."""

    status: Literal["ok", "degraded"]
    component: str
    reason: str
    timestamp: str
    complete: bool | None = None
    gaps: list[str] | None = None


class Gap(_Out, tag="gap"):
    """Messages ``from_seq`` to ``to_seq`` of stream ``channel`` are lost to this connection: the server
    missed them during an outage longer than the stream's history, so no resume can bring them back."""

    channel: str
    from_seq: int
    to_seq: int
    timestamp: str


class PriceUpdate(_Out, tag="price_update"):
    ticker: str
    price: float
    change: float
    change_percent: float
    volume: int
    high: float
    low: float
    open: float
    timestamp: str
    previous_close: float | None = None
    channel: str | None = None


class PatternAlert(_Out, tag="pattern_alert"):
    ticker: str
    pattern_type: str
    score: float
    entry_price: float
    stop_price: float
    target_price: float
    risk_reward_ratio: float | None
    message: str
    timestamp: str
    channel: str | None = None


class WatchlistUpdate(_Out, tag="watchlist"):
    """A user's watchlist after a change (channel ``watchlist``, the user's own stream): other tabs and
    every subscription filter that follows the watchlist (``{"ticker": "watchlist"}``) go by it."""

    tickers: list[str]
    timestamp: str
    channel: str | None = None


class AlertTrigger(_Out, tag="alert_trigger"):
    ticker: str
    alert_type: str
    trigger_price: float
    current_price: float
    message: str
    timestamp: str
    alert_id: str | None = None
    channel: str | None = None


def alert_text(ticker: str, alert_type: str, trigger: float, current: float) -> str:
    """The specification's wording: ``AAPL breaking out at $150.25 (target: $150.00)``."""
    verbs = {
        "breakout": "breaking out",
        "breakdown": "breaking down",
        "price_above": "above its alert level",
        "price_below": "below its alert level",
    }
    verb = verbs.get(alert_type, f"{alert_type.replace('_', ' ')} alert")
    return f"{ticker} {verb} at ${current:,.2f} (target: ${trigger:,.2f})"


class BarMessage(_Out, tag="bar"):
    """One bar of ``bars:{ticker}:{interval}``: ``time`` is its start; ``closed`` false while it forms
    (conflated: the newest wins), true once, when it is final (must-deliver)."""

    ticker: str
    interval: str
    time: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    closed: bool
    channel: str | None = None


class MarketStatus(_Out, tag="market_status"):
    status: str
    next_open: str | None
    next_close: str | None
    timestamp: str
    exchange: str | None = None
    early_close: bool | None = None
    channel: str | None = None


_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes of a server message."""
    return _encoder.encode(message)
