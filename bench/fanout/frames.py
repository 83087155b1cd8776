"""What goes over the wire: the price every server fans out, and how clients recognise it.

Every published price carries a unique id in ``volume`` (Legend passes it through unchanged; a cumulative
volume is an increasing integer anyway) and its publish time in ``timestamp`` (ISO-8601, milliseconds,
as Legend sends it). Clients read the id of every frame (one ``bytes.find``, no JSON decoding) and so
count each window's frames exactly, see the last price each client ended on, and time a sample of frames
against the publisher's own log of when each id was published (microseconds; ``timestamp`` is the same
instant rounded to the millisecond, for a reader of the frames).
"""

from __future__ import annotations

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
