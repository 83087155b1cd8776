"""Hypothesis profiles and client-frame strategies of the fuzz tests (tests/fuzz, docs/reliability.md).

``HYPOTHESIS_PROFILE`` picks the profile (loaded when this module is imported, before any test module is):

- ``ci`` (the default, what ./scripts/test.sh runs): few examples, ``derandomize=True`` so that every run
  tries the same inputs and a failure reproduces as is; no example database.
- ``long``: a hundred times the examples (``HYPOTHESIS_LONG_FACTOR`` to change that), random, with the
  example database (``.hypothesis/``) so that a failure found once is tried first the next time:
  ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/fuzz`` (about an hour and a half here).

Each test says how many examples it wants in ``ci`` (``examples(n)``); ``long`` multiplies that.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG_FACTOR = int(os.environ.get("HYPOTHESIS_LONG_FACTOR", "100"))

_QUIET_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=_QUIET_CHECKS
)
settings.register_profile("long", deadline=None, print_blob=True, suppress_health_check=_QUIET_CHECKS)
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: use 'ci' (the default) or 'long'")
settings.load_profile(PROFILE)


def examples(ci: int) -> settings:
    """Settings for a test that tries ``ci`` examples in the ``ci`` profile (``LONG_FACTOR`` times as
    many in ``long``)."""
    return settings(max_examples=ci if PROFILE == "ci" else ci * LONG_FACTOR)


# ───────────────────────────── client frames ─────────────────────────────

CHANNELS = ("ticker", "patterns", "alerts", "market_status")
TICKERS = ("AAA", "BBB", "aaa", " BBB ", "BRK.B", "^GSPC")  # known ones, as clients write them

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
bad_tickers = st.sampled_from(("", " ", "AA$PL", "ıbm", "ß", "ﬀ", "A" * 13, "1A", "A..B", "-A", "a\u0000"))
tickers = st.sampled_from(TICKERS) | bad_tickers | st.text(max_size=14)
stream_names = st.sampled_from(
    (
        "ticker:AAA",
        "ticker:BBB",
        "patterns",
        "alerts",
        "alerts:user:alice",
        "alerts:user:bob",
        "market_status",
    )
) | st.text(max_size=12)
since = st.integers(min_value=-3, max_value=60) | st.dictionaries(
    stream_names, st.integers(min_value=-3, max_value=60), max_size=3
)


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A client command as the protocol has them, some fields wrong or missing."""
    kind = draw(st.sampled_from(("subscribe", "subscribe", "unsubscribe", "ping")))
    command: dict[str, Any] = {"type": kind}
    if kind == "ping":
        return command
    channel = draw(st.sampled_from(CHANNELS) | st.sampled_from(("chat", "", "Ticker", "news")))
    command["channel"] = channel
    if draw(st.booleans()) if channel != "ticker" else draw(st.integers(0, 9)) > 0:
        command["ticker"] = draw(tickers)
    if kind == "subscribe" and draw(st.booleans()):
        command["since"] = draw(since)
    return command


@st.composite
def json_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object with the protocol's field names, and any values."""
    fields = st.sampled_from(("type", "channel", "ticker", "since")) | st.text(max_size=6)
    obj: dict[str, Any] = draw(st.dictionaries(fields, json_values, max_size=5))
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(("subscribe", "unsubscribe", "ping", "", "PING", "pong")))
    return obj


def _deeply_nested(depth: int) -> str:
    return '{"type":"ping","a":' + "[" * depth + "]" * depth + "}"


def encoded(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@st.composite
def mangled(draw: st.DrawFn, frames: st.SearchStrategy[str]) -> str | bytes:
    """A frame cut short, with bytes inserted, or turned into bytes that are not UTF-8."""
    frame = draw(frames)
    cut = draw(st.integers(0, len(frame)))
    how = draw(st.sampled_from(("cut", "insert", "binary")))
    if how == "cut":
        return frame[:cut]
    if how == "insert":
        return (
            frame[:cut]
            + draw(st.sampled_from(("{", "}", "[", '"', ",", ":", "\\", "\\u", " x")))
            + frame[cut:]
        )
    return frame[:cut].encode() + draw(st.binary(min_size=1, max_size=4)) + frame[cut:].encode()


valid_frames = commands().map(encoded)
client_frames: st.SearchStrategy[str | bytes] = st.one_of(
    valid_frames,
    json_objects().map(encoded),
    json_values.map(encoded),
    mangled(valid_frames),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=1500).map(_deeply_nested),
    st.just('{"type":"ping","pad":"' + "x" * 5000 + '"}'),  # over max_frame_bytes
)
