"""The light replacements of uvicorn's per-connection asyncio.Queue and asyncio.Event
(legend/adapters/http/websocket_protocol.py): same behaviour where uvicorn and Legend use them; and the
pings it leaves unanswered while its write buffer is full."""

from __future__ import annotations

import asyncio
import sys

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.protocol import State
from websockets.server import ServerProtocol

from legend.adapters.http.websocket_protocol import _Flag, _Inbox, protocol_class
from legend.adapters.http.ws import close_reason


async def test_inbox_hands_events_over_in_order_to_its_reader() -> None:
    inbox = _Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty() and inbox.qsize() == 2
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(3)  # wakes the waiting reader
    inbox.put_nowait(4)  # queued behind it
    assert await reader == 3
    assert await inbox.get() == 4


async def test_an_inbox_reader_cancelled_while_waiting_loses_nothing() -> None:
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("disconnect")
    assert await asyncio.wait_for(inbox.get(), 1) == "disconnect"


async def test_flag_wakes_every_waiter_and_keeps_nothing_once_set() -> None:
    flag = _Flag(True)
    assert flag.is_set() and await flag.wait()
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag._waiters is None


async def test_a_cancelled_flag_waiter_is_forgotten() -> None:
    flag = _Flag(False)
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert flag._waiters == []
    flag.set()


def test_they_are_much_smaller_than_what_they_replace() -> None:
    """Not a timing: object sizes, which decide the memory of 10,000 idle connections."""

    def size(obj: object) -> int:
        return sys.getsizeof(obj) + sum(
            sys.getsizeof(getattr(obj, name)) for name in getattr(obj, "__dict__", {}) or ()
        )

    queue: asyncio.Queue[object] = asyncio.Queue()
    event = asyncio.Event()
    heavy = size(queue) + sum(sys.getsizeof(getattr(queue, n)) for n in ("_queue", "_getters", "_putters"))
    heavy += size(event) + sys.getsizeof(event._waiters)  # type: ignore[attr-defined]
    light = sys.getsizeof(_Inbox()) + sys.getsizeof([]) + sys.getsizeof(_Flag(True))
    assert light * 5 < heavy


@pytest.mark.parametrize("text", ["é" * 200, "\U0001f511" * 60, "a" * 500, "short"])
def test_a_close_reason_fits_a_close_frame(text: str) -> None:
    reason = close_reason(text)
    assert len(reason.encode()) <= 123 and text.startswith(reason) and reason


class _Transport:
    """What the protocol writes, and nothing else."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


async def test_pings_are_not_answered_while_the_write_buffer_is_over_its_high_water_mark() -> None:
    """A peer that pings but does not read would otherwise grow asyncio's buffer by a pong per ping."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(1.0)(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    protocol.conn = ServerProtocol(state=State.OPEN)
    transport = protocol.transport = _Transport()  # type: ignore[assignment]
    ping = b"\x89\x84" + b"\x00" * 4 + b"abcd"  # masked ping, payload "abcd", all-zero mask
    protocol.data_received(ping)
    assert transport.written == [b"\x8a\x04abcd"]  # answered
    protocol.pause_writing()  # what asyncio calls once the buffer passes the high-water mark
    for _ in range(100):
        protocol.data_received(ping)
    assert b"".join(transport.written[1:]) == b""  # no pong piles up
    protocol.resume_writing()
    protocol.data_received(ping)
    assert transport.written[-1] == b"\x8a\x04abcd"  # answered again once it drained
