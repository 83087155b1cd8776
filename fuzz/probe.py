"""The oracle of the frame fuzzers (fuzz/frames.py under atheris, tests/fuzz/test_frames.py under
hypothesis): client frames through one new session of a real ``StreamingService`` (in-memory backplane,
frozen clock, a transport that keeps every frame), each reply checked.

A frame must be answered with exactly one reply: an ``error`` whose ``code`` is one that docs/protocol.md
documents (the one the decoder gives, for a frame it refuses), a ``pong`` for a ping, a ``subscription``
followed by one ``history`` per stream it lists. Any exception is a failure too.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.channels import ChannelRegistry
from legend.domain.messages import Ping, ProtocolError, Subscribe, Unsubscribe, decode_client_message
from legend.services.streaming.limits import Limits
from legend.services.streaming.service import StreamingService
from tests.support.transport import RecordingTransport

ROOT = Path(__file__).resolve().parents[1]
MAX_FRAMES = 8  # per input: below the inbound burst, so that no frame is refused for the rate


def documented_error_codes(protocol: Path = ROOT / "docs" / "protocol.md") -> frozenset[str]:
    """The ``code`` values of the Errors table of docs/protocol.md: the only ones a client may get."""
    text = protocol.read_text(encoding="utf-8")
    section = text.split("\n### Errors\n", 1)[1].split("\n### ", 1)[0]
    return frozenset(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def split_frames(data: bytes) -> list[str | bytes]:
    """An input as the frames a client sent: text when valid UTF-8, else binary."""
    frames: list[str | bytes] = []
    for raw in data.split(b"\x00")[:MAX_FRAMES]:
        try:
            frames.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            frames.append(raw)
    return frames


class FrameProbe:
    """Frames through a new session of a real streaming service, each reply checked (see the module)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.limits = limits or Limits()
        self.service = StreamingService(InMemoryBackplane(), ChannelRegistry(), FrozenClock(), self.limits)
        self.loop.run_until_complete(self.service.start())
        self.codes = documented_error_codes()

    def close(self) -> None:
        self.loop.close()

    def check(self, frames: Sequence[str | bytes]) -> list[list[dict[str, Any]]]:
        """The replies to each frame; raises AssertionError when one is not as the protocol says."""
        return self.loop.run_until_complete(self._check(frames))

    async def _check(self, frames: Sequence[str | bytes]) -> list[list[dict[str, Any]]]:
        assert len(frames) < self.limits.inbound_burst, "more frames than the inbound burst"
        transport = RecordingTransport()
        session = self.service.open_session(transport, "fuzz")
        transport.texts.clear()  # the connection acknowledgement
        answers: list[list[dict[str, Any]]] = []
        try:
            for frame in frames:
                before = len(transport.texts)
                await self.service.handle_frame(session, frame)
                replies = [json.loads(text) for text in transport.texts[before:]]
                self.check_replies(frame, replies)
                answers.append(replies)
        finally:
            self.service.end_session(session)
        return answers

    def check_replies(self, frame: str | bytes, replies: list[dict[str, Any]]) -> None:
        """One frame's replies: exactly one answer, as the protocol says for that frame."""
        assert replies, f"no reply to {frame!r}"
        first, kind = replies[0], replies[0].get("type")
        size = len(frame if isinstance(frame, bytes) else frame.encode())
        try:
            message = None if size > self.limits.max_frame_bytes else decode_client_message(frame)
            refused: ProtocolError | None = None
        except ProtocolError as exc:
            message, refused = None, exc
        if kind == "error":
            assert len(replies) == 1, f"more than one reply to {frame!r}: {replies}"
            code = first.get("code")
            assert code in self.codes, f"undocumented error code {code!r} for {frame!r}"
            assert isinstance(first.get("message"), str) and first["message"], first
            if size > self.limits.max_frame_bytes:
                assert code == "too_large", (frame, first)
            elif refused is not None:
                assert (code, first["message"]) == (refused.code, refused.message), (frame, first)
            else:  # a well-formed frame the session refused: what it asked for is not possible
                assert isinstance(message, Subscribe | Unsubscribe), (frame, first)
                assert code in {"invalid_subscription", "subscription_limit"}, (frame, first)
            return
        assert refused is None and message is not None, f"{frame!r} refused by the decoder, answered {first}"
        if kind == "pong":
            assert isinstance(message, Ping) and len(replies) == 1, (frame, replies)
        elif kind == "subscription":
            action, streams = first.get("action"), first.get("streams", [])  # [] is left out
            assert isinstance(streams, list), first
            if action == "subscribed":
                assert isinstance(message, Subscribe), (frame, first)
                histories = replies[1:]
                assert [h.get("type") for h in histories] == ["history"] * len(streams), (frame, replies)
                assert [h.get("channel") for h in histories] == streams, (frame, replies)
            else:
                assert action == "unsubscribed" and isinstance(message, Unsubscribe), (frame, first)
                assert len(replies) == 1, (frame, replies)
        else:
            raise AssertionError(f"{frame!r} answered with {kind!r}: {replies}")
