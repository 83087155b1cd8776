"""What goes over the wire: the price every server fans out, and how clients recognise it.

Every published price carries a unique id in ``volume`` (Legend passes it through unchanged; a cumulative
volume is an increasing integer anyway) and its publish time in ``timestamp`` (ISO-8601, milliseconds,
as Legend sends it). Clients read the id of every frame (one ``bytes.find``, no JSON decoding) and so
count each window's frames exactly, see the last price each client ended on, and time a sample of frames
against the publisher's own log of when each id was published (microseconds; ``timestamp`` is the same
instant rounded to the millisecond, for a reader of the frames).
"""

from __future__ import annotations

import json
import time

TICKER = "BENCH"
SUBSCRIBE = b'{"type":"subscribe","channel":"ticker","ticker":"BENCH"}'
# What the reference servers answer a subscribe with (Legend answers with a history message too).
ACK = '{"type":"history","channel":"ticker:BENCH","messages":[],"seq":0}'
READY_PREFIX = b'{"type":"history"'
DATA_PREFIX = b'{"type":"price_update"'
ID_KEY = b'"volume":'

# Socket.IO v5 over Engine.IO v4: "42" is a MESSAGE (4) carrying an EVENT (2).
SIO_ROOM = "bench"
SIO_PATH = "/socket.io/?EIO=4&transport=websocket"
SIO_SUBSCRIBE = b'42["subscribe","BENCH"]'
SIO_READY_PREFIX = b'42["subscribed"'
SIO_DATA_PREFIX = b'42["price",'

# Ids of window w are ID_BASE + w * WINDOW_SPAN + seq: far above any volume Legend's own simulated
# quote poller sends, and each window's stragglers are told apart from the next window's frames.
ID_BASE = 10**12
WINDOW_SPAN = 10**7

# The price_update frame exactly as Legend sends it (checked against a running server): the reference
# servers get these bytes, so every server writes the same frame.
FRAME = (
    '{"type":"price_update","ticker":"BENCH","price":%s,"change":0.0,"change_percent":0.0,"volume":%d,'
    '"high":%s,"low":%s,"open":%s,"timestamp":"%s","channel":"ticker:BENCH","seq":%d}'
)
LEGEND_BODY = '{"ticker":"BENCH","price":%s,"volume":%d,"timestamp":"%s"}'


def iso_ms(at: float) -> str:
    """``at`` (epoch seconds) as Legend writes timestamps: ``2025-11-18T10:30:00.123Z``."""
    ms = round(at * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def price_text(seq: int) -> str:
    return "%.2f" % (100 + (seq % 100_000) / 100)


def legend_body(ident: int, seq: int, at: float) -> bytes:
    """The body of ``POST /api/ws/broadcast/price``."""
    return (LEGEND_BODY % (price_text(seq), ident, iso_ms(at))).encode()


def frame(ident: int, seq: int, at: float) -> bytes:
    """The frame Legend would send for the same price; ``seq`` is the stream's sequence number."""
    price = price_text(seq)
    return (FRAME % (price, ident, price, price, price, iso_ms(at), seq)).encode()


# ───────── --channel patterns: pattern alerts, optionally under subscription filters (issue 22) ─────────
# The id travels in ``message`` (a string Legend passes through unchanged; no numeric field of a pattern
# alert holds 10**12), the publish time in ``timestamp`` as for prices. ``score`` is 50 so that every
# filter of ``filters`` holds for every alert: filtered and unfiltered connections get the same messages.

PATTERN_SUBSCRIBE = b'{"type":"subscribe","channel":"patterns"}'
PATTERN_PREFIX = b'{"type":"pattern_alert"'
PATTERN_ID_KEY = b'"message":"'
PATTERN_FRAME = (
    '{"type":"pattern_alert","ticker":"BENCH","pattern_type":"VCP","score":50.0,"entry_price":%s,'
    '"stop_price":%s,"target_price":%s,"risk_reward_ratio":2.0,"message":"%d","timestamp":"%s",'
    '"channel":"patterns","seq":%d}'
)
PATTERN_BODY = (
    '{"ticker":"BENCH","pattern_type":"VCP","score":50.0,"entry_price":%s,"stop_price":%s,'
    '"target_price":%s,"risk_reward_ratio":2.0,"message":"%d","timestamp":"%s"}'
)


def _pattern_prices(seq: int) -> tuple[str, str, str]:
    entry = 100 + (seq % 100_000) / 100
    return f"{entry:.2f}", f"{entry - 1:.2f}", f"{entry + 2:.2f}"


def pattern_body(ident: int, seq: int, at: float) -> bytes:
    """The body of ``POST /api/ws/broadcast/pattern``."""
    return (PATTERN_BODY % (*_pattern_prices(seq), ident, iso_ms(at))).encode()


def pattern_frame(ident: int, seq: int, at: float) -> bytes:
    """The frame Legend sends for the same pattern alert (what the reference servers are given)."""
    return (PATTERN_FRAME % (*_pattern_prices(seq), ident, iso_ms(at), seq)).encode()


def filters(count: int) -> list[dict[str, object]]:
    """``count`` distinct filters that all hold for every bench alert (``score`` 50, ``VCP``, ``BENCH``,
    entry price 100-1100): a mix of the operators and combinators a dashboard sends, each made distinct by
    its ``k``. Filtered and unfiltered connections so get the same alerts, and a ratio of the two measures
    what evaluating the filters costs, not fewer messages."""
    out: list[dict[str, object]] = []
    for k in range(count):
        shape = k % 5
        if shape == 0:  # the dashboard's own: types and a minimum score
            out.append({"pattern_type": {"in": ["VCP", f"P{k}"]}, "score": {"gte": k % 50}})
        elif shape == 1:
            out.append({"ticker": {"ne": f"X{k}"}, "entry_price": {"gt": 0, "lt": 2000 + k}})
        elif shape == 2:
            out.append({"and": [{"score": {"lte": 100 - k % 50}}, {"message": {"exists": True}}]})
        elif shape == 3:
            out.append({"or": [{"pattern_type": {"eq": "VCP"}}, {"score": {"gt": 1000 + k}}]})
        else:
            out.append({"not": {"ticker": {"in": [f"Y{k}", "ZZZZ"]}}, "stop_price": {"gte": k % 50}})
    return out


def pattern_subscribes(count: int) -> list[bytes]:
    """The subscribe frames of the patterns clients: unfiltered (``count`` 0) or over ``count`` filters."""
    if count <= 0:
        return [PATTERN_SUBSCRIBE]
    return [
        json.dumps({"type": "subscribe", "channel": "patterns", "filter": f}, separators=(",", ":")).encode()
        for f in filters(count)
    ]


def read_id(payload: bytes) -> int:
    """The id (``volume``) of a price frame, or -1."""
    i = payload.find(ID_KEY)
    if i < 0:
        return -1
    i += len(ID_KEY)
    end = payload.find(b",", i)
    try:
        return int(payload[i:end])
    except ValueError:
        return -1
