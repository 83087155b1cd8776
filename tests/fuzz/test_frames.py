"""Hypothesis on the client frame decoder and the session's answer to each frame: never an exception,
every bad frame answered with one ``error`` whose code docs/protocol.md documents.

The decoder is checked against a plain reading of the protocol (what an untyped JSON parse of the frame
says it should be), and every frame through a real session by the atheris target's oracle
(fuzz/probe.py). HYPOTHESIS_PROFILE=long runs a hundred times as many examples (tests/support/fuzzing.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.probe import FrameProbe, documented_error_codes
from legend.domain.messages import (
    CLIENT_TYPES,
    ClientMessage,
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    decode_client_message,
)
from tests.support.fuzzing import client_frames, examples

CODES = documented_error_codes()
TAGS = {Subscribe: "subscribe", Unsubscribe: "unsubscribe", Ping: "ping"}


def expected_refusal(frame: str | bytes) -> tuple[str, str] | None:
    """(code, start of the message) the protocol gives ``frame``, read with an untyped JSON parse; None
    when it is a well-typed command (or a command whose fields are wrong: invalid_message)."""
    try:
        value = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return "invalid_json", "Invalid JSON: "
    except RecursionError:
        return "invalid_message", "Message nested too deeply"
    if not isinstance(value, dict):
        return "invalid_message", "Message must be a JSON object"
    kind = value.get("type")
    if kind is None:
        return "invalid_message", "Missing message type"
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        return "unknown_type", "Unknown message type: "
    return None


def _utf8(frame: bytes) -> bool:
    try:
        frame.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_the_documented_codes_are_read_from_the_protocol_page() -> None:
    assert {"invalid_json", "invalid_message", "unknown_type", "too_large", "rate_limited"} <= CODES


@examples(600)
@given(client_frames)
def test_the_decoder_refuses_only_with_documented_codes_as_the_protocol_reads(frame: str | bytes) -> None:
    try:
        message: ClientMessage | None = decode_client_message(frame)
        refusal: ProtocolError | None = None
    except ProtocolError as exc:
        message, refusal = None, exc
    if isinstance(frame, bytes) and not _utf8(frame):
        # A binary frame that is not UTF-8: msgspec checks only the strings it keeps (a field it skips
        # may hold any bytes), so it may be a command or any documented refusal, never an exception.
        assert refusal is None or refusal.code in CODES
        return
    expected = expected_refusal(frame)
    if refusal is None:
        assert expected is None, (frame, expected)
        assert message is not None
        decoded = msgspec.json.decode(frame)
        assert decoded["type"] == TAGS[type(message)]
        return
    assert refusal.code in CODES and refusal.message
    if expected is None:  # a known type with fields of the wrong shape
        assert refusal.code == "invalid_message", (frame, refusal.message)
        assert refusal.message.startswith(f"Invalid {msgspec.json.decode(frame)['type']} message: ")
    else:
        code, start = expected
        assert (refusal.code, refusal.message[: len(start)]) == (code, start), (frame, refusal.message)
    assert len(refusal.message) < 400  # never the whole frame echoed back


@pytest.fixture(scope="module")
def probe() -> Iterator[FrameProbe]:
    with closing(FrameProbe()) as frame_probe:
        yield frame_probe


@examples(300)
@given(frames=st.lists(client_frames, min_size=1, max_size=8))
def test_every_frame_gets_exactly_one_answer_from_a_session(
    probe: FrameProbe, frames: list[str | bytes]
) -> None:
    answers = probe.check(frames)
    assert len(answers) == len(frames)
