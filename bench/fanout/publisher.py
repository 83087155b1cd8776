"""The publisher: one persistent connection to the server under test, one price at a time.

Saturated, it sends the next price as soon as the server has answered the previous one and the clients
have caught up to within ``Gate.AHEAD`` prices (some servers answer before they write: without the gate
their queues, and their latency, would grow without bound, and python-socketio then drops clients whose
pongs wait behind the queue). Paced, it sends
price k at its scheduled instant; a server that answers late delays the publisher, and the prices it
then sends late still carry their scheduled time, so that the lateness counts as latency (no coordinated
omission). Legend and the ASGI servers take an HTTP/1.1 POST; the picows server takes a text frame on
``/publish`` (it speaks only WebSocket) and answers with one.
"""

from __future__ import annotations

import array
import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.fanout.procs import HOST


class Lane(Protocol):
    async def post(self, body: bytes) -> tuple[int, bytes]: ...
    def close(self) -> None: ...


class HttpLane:
    """A persistent HTTP/1.1 connection that POSTs JSON and reads Content-Length answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str]) -> HttpLane:
        reader, writer = await asyncio.open_connection(HOST, port)
        lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return cls(reader, writer, ("\r\n".join(lines) + "\r\nContent-Length: ").encode())

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(b"%s%d\r\n\r\n%s" % (self.head, len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)content-length:\s*(\d+)", head)
        answer = await self.reader.readexactly(int(match.group(1))) if match else b""
        return status, answer

    def close(self) -> None:
        self.writer.close()


class _Answers(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.waiting: asyncio.Future[bytes] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT and self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(frame.get_payload_as_bytes())


class WsLane:
    """A WebSocket to the picows server's ``/publish``: one text frame out, one answer back."""

    def __init__(self, transport: WSTransport, answers: _Answers) -> None:
        self.transport = transport
        self.answers = answers

    @classmethod
    async def open(cls, port: int, path: str) -> WsLane:
        transport, answers = await ws_connect(_Answers, f"ws://{HOST}:{port}{path}")
        return cls(transport, answers)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.answers.waiting = asyncio.get_running_loop().create_future()
        self.transport.send(WSMsgType.TEXT, body)
        return 200, await self.answers.waiting

    def close(self) -> None:
        self.transport.disconnect()


@dataclass
class Target:
    """Where and what the publisher sends to one server."""

    port: int
    path: str
    body: Callable[[int, int, float], bytes]  # (id, seq, publish time) -> request body or frame
    headers: dict[str, str] = field(default_factory=dict)
    websocket: bool = False

    async def open(self) -> Lane:
        if self.websocket:
            return await WsLane.open(self.port, self.path)
        return await HttpLane.open(self.port, self.path, self.headers)


@dataclass
class Published:
    """What one publishing window sent: ``times[k]`` is when id ``first_id + k`` was published."""

    first_id: int
    rate: float | None
    start: float = 0.0  # wall time of the first publish slot
    planned: int = 0  # paced: prices the schedule had in the window (what was offered)
    times: array.array[float] = field(default_factory=lambda: array.array("d"))
    failures: int = 0
    first_failure: str = ""
    recipients: int = 0  # from the last answer: subscribers the server (or the one worker) counted

    @property
    def sent(self) -> int:
        return len(self.times) - self.failures

    @property
    def last_id(self) -> int:
        return self.first_id + len(self.times) - 1


class Gate:
    """Saturated publishing: price k goes out once price k - AHEAD has reached (nearly) every client.

    "Nearly": 97% of the frames owed so far, since a conflating server may legitimately merge a price,
    and a server that dropped clients never catches up; past ``TIMEOUT`` the price goes out anyway and
    the timeout is counted (and reported).
    """

    AHEAD = 2
    SHARE = 0.97
    TIMEOUT = 0.1

    def __init__(self, received: Callable[[], int], clients: int) -> None:
        self.received = received
        self.clients = clients
        self.timeouts = 0

    async def wait(self, seq: int) -> None:
        owed = (seq - 1 - self.AHEAD) * self.clients * self.SHARE
        if owed <= 0 or self.received() >= owed:
            return
        deadline = time.monotonic() + self.TIMEOUT
        while self.received() < owed:
            if time.monotonic() > deadline:
                self.timeouts += 1
                return
            await asyncio.sleep(0.0005)


async def publish(
    target: Target, first_id: int, seconds: float, rate: float | None, gate: Gate | None = None
) -> Published:
    """Publish for ``seconds``: saturated (``rate`` None) or paced at ``rate`` prices a second."""
    result = Published(first_id, rate)
    lane = await target.open()
    try:
        start = time.monotonic()
        result.start = wall = time.time()
        deadline = start + seconds
        result.planned = int(rate * seconds) if rate else 0
        seq = 0
        while (now := time.monotonic()) < deadline:
            if rate:
                if seq >= result.planned:
                    break
                due = start + seq / rate
                if due > now:
                    await asyncio.sleep(due - now)
                at = wall + (due - start)
            else:
                if gate is not None:
                    await gate.wait(seq + 1)
                at = time.time()
            ident = first_id + seq
            seq += 1
            result.times.append(at)
            try:
                async with asyncio.timeout(30):
                    status, answer = await lane.post(target.body(ident, seq, at))
            except TimeoutError:
                result.failures += 1
                result.first_failure = result.first_failure or "no answer within 30 s"
                break
            if status != 200:
                result.failures += 1
                result.first_failure = result.first_failure or f"HTTP {status}: {answer[:200]!r}"
                continue
            answered: dict[str, Any] = json.loads(answer)
            result.recipients = int(answered.get("recipients", 0))
    finally:
        lane.close()
    return result
