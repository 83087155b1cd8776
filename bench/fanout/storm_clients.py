"""The restart storm's clients: subscribed to the ticker, following every ``seq``, reconnecting as the
browser client does and resuming with ``since``.

Each client checks its own stream as it goes: the next ``seq`` of ``ticker:BENCH`` must be its last
plus one (from a live frame or from the ``history`` of a resume); a smaller one is a repeat, a larger one
a hole (counted, the client goes on from it). A ``gap`` frame or ``"recovered": false`` is the server
telling of a hole. On a close it waits the close's ``reconnect_after_ms`` hint plus
``computeBackoff(attempt)`` of web/static/js/client/connection.js (equal jitter below 1 s × 1.5^attempt,
at most 30 s; ``attempt`` reset by a socket that opened) and connects again from the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import msgspec
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.fanout.clients import CommandLoop, source_address
from bench.fanout.frames import DATA_PREFIX, SUBSCRIBE
from bench.fanout.procs import die_with_parent, raise_fd_limit

RECONNECT_DELAY = 1.0  # the browser client's defaults (docs/protocol.md, "The browser client"), seconds
BACKOFF_MULTIPLIER = 1.5
MAX_RECONNECT_DELAY = 30.0
HINT = re.compile(r"reconnect_after_ms=(\d{1,9})")
SEQ_KEY = b'"seq":'
CONNECT_TIMEOUT = 30.0  # seconds a connect and its handshake may take before it is given up and retried
HISTORY_PREFIX = b'{"type":"history"'
GAP_PREFIX = b'{"type":"gap"'


def backoff(attempt: int) -> float:
    """``computeBackoff(attempt)`` of the browser client, in seconds."""
    ceiling = min(MAX_RECONNECT_DELAY, RECONNECT_DELAY * BACKOFF_MULTIPLIER**attempt)
    return ceiling / 2 + random.random() * ceiling / 2


class StormClient(WSListener):  # type: ignore[misc]
    """One trader's dashboard, as far as the ticker's ``seq`` goes."""

    def __init__(self, url: str, address: str) -> None:
        self.url = url
        self.address = address
        self.transport: WSTransport | None = None
        self.last: int | None = None
        self.first: int | None = None
        self.subscribed = 0  # history replies received (1: the first subscribe; more: resumes)
        self.holes = 0  # seqs skipped without a word from the server
        self.repeats = 0  # seqs at or below the last one
        self.told = 0  # gap frames and "recovered": false
        self.hole_at: Counter[str] = Counter()  # where holes were seen: in a history, or between frames
        self.after_history = False  # the last frame was a history: the next live one joins it
        self.closed_at: float | None = None  # the close of the connection before the restart
        self.resumed_at: float | None = None  # the history of the first resume after it
        self.closes: Counter[str] = Counter()  # "code reason" of every close frame received
        self.refusals: Counter[str] = Counter()  # by a limit: 4429, 1013 server full, HTTP 503 or 429
        self.failed: Counter[str] = Counter()  # other connects that did not open: timeouts, resets, …
        self.unreachable = 0  # connects that found nothing listening (the restart's gap)
        self.attempts = 0  # connects after the first one
        self.reason = ""
        self.opened = False
        self.phase = "new"  # connecting, open (no history since it opened), subscribed, waiting
        self.done: asyncio.Event = asyncio.Event()  # a socket closed
        self.ready: asyncio.Event = asyncio.Event()  # the first history arrived

    # ───── picows callbacks ─────

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.opened = True
        self.phase = "open"
        if self.last is None:
            transport.send(WSMsgType.TEXT, SUBSCRIBE)
        else:
            transport.send(WSMsgType.TEXT, SUBSCRIBE[:-1] + b',"since":%d}' % self.last)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.closed_at is None and self.subscribed:
            self.closed_at = time.time()
        self.transport = None
        self.done.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            code = frame.get_close_code().value
            self.reason = (frame.get_close_message() or b"").decode(errors="replace")
            self.closes[f"{code} {self.reason.split(';')[0][:50]}"] += 1
            if code == 4429 or (code == 1013 and "full" in self.reason):
                self.refusals[f"{code} {self.reason[:60]}"] += 1
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if payload.startswith(DATA_PREFIX):
            i = payload.rfind(SEQ_KEY) + len(SEQ_KEY)
            before = self.holes
            self.see(int(payload[i : payload.find(b"}", i)]))
            if self.holes > before:
                self.hole_at["live after history" if self.after_history else "live after live"] += 1
            self.after_history = False
        elif payload.startswith(HISTORY_PREFIX):
            history = msgspec.json.decode(payload)
            before = self.holes
            if history.get("recovered") is False:
                self.told += 1
            for message in history.get("messages", ()):
                self.see(int(message["seq"]))
            if self.holes > before:
                self.hole_at[f"in history, recovered {history.get('recovered')}"] += 1
            self.after_history = True
            self.subscribed += 1
            self.phase = "subscribed"
            self.ready.set()
            if self.subscribed > 1 and self.resumed_at is None and self.closed_at is not None:
                self.resumed_at = time.time()
        elif payload.startswith(GAP_PREFIX):
            self.told += 1
            self.hole_at["gap frame"] += 1

    def see(self, seq: int) -> None:
        last = self.last
        if last is None:
            self.first = seq
        elif seq <= last:
            self.repeats += 1
            return
        elif seq != last + 1:
            self.holes += seq - last - 1
        self.last = seq

    # ───── the reconnect loop ─────

    async def connect_once(self) -> bool:
        """One connect; True when the socket opened (it then runs until closed)."""
        self.opened = False
        self.done.clear()
        self.phase = "connecting"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, listener = await ws_connect(
                    lambda: self,
                    self.url,
                    websocket_handshake_timeout=CONNECT_TIMEOUT - 5,
                    read_buffer_init_size=4096,
                    local_addr=(self.address, 0),
                )
        except ConnectionRefusedError:
            self.unreachable += 1
            return False
        except TimeoutError:
            self.failed["connect timed out"] += 1
            return False
        except Exception as exc:
            response = getattr(exc, "response", None)
            status = getattr(response, "status", None)
            body = bytes(getattr(exc, "raw_body", None) or b"")  # picows's WSHandshakeError
            if status is not None and int(status) == 503 and b"restarting" in body:
                self.failed["HTTP 503 restarting"] += 1  # the old process stopping: not a limit
            elif status is not None and int(status) in (429, 503):
                self.refusals[f"HTTP {int(status)}"] += 1
            else:
                self.failed[f"HTTP {int(status)}" if status is not None else type(exc).__name__] += 1
            return False
        if listener is not self:
            # picows answers a connection lost during the handshake (a server shutting down closes what
            # it accepted) with no listener and no error: a browser sees a close (1006) and reconnects
            self.failed["closed during the handshake"] += 1
            return False
        return True

    async def live(self, opened: bool) -> None:
        """Connected (``opened``: the first socket is open already), and reconnecting after every close,
        until cancelled."""
        attempt = 0
        while True:
            if opened or await self.connect_once():
                opened = False
                attempt = 0  # the browser client's _handleOpen
                await self.done.wait()
            self.phase = "waiting"
            match = HINT.search(self.reason)
            self.reason = ""
            await asyncio.sleep((int(match.group(1)) / 1000 if match else 0.0) + backoff(attempt))
            attempt += 1
            self.attempts += 1

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


class StormWorker(CommandLoop):
    """Runs in a client process: the storm's commands, one at a time (see ``ClientPool``)."""

    def __init__(self, conn: Connection, index: int) -> None:
        self.conn = conn
        self.index = index
        self.clients: list[StormClient] = []
        self.lives: list[asyncio.Task[None]] = []

    def stopped(self) -> None:
        """Told to stop: end the clients' lives and drop their connections at once."""
        for task in self.lives:
            task.cancel()
        for client in self.clients:
            if client.transport is not None:
                client.transport.disconnect(graceful=False)

    async def op_connect(self, url: str, count: int, concurrency: int = 64) -> dict[str, Any]:
        """``count`` clients (``{index}`` in ``url`` made unique), at most ``concurrency`` of them
        between connect and subscribed at once (the run's setup, not the storm: as the fan-out bench
        connects); each then lives on, reconnecting. Answers once every first attempt has ended."""
        first = len(self.clients)
        for i in range(first, first + count):
            client = StormClient(url.format(index=f"s{self.index}c{i}"), source_address(self.index, i))
            self.clients.append(client)
        limit = asyncio.Semaphore(concurrency)

        async def start(client: StormClient) -> None:
            async with limit:
                opened = await client.connect_once()
                if opened:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(60):
                            await client.ready.wait()
            self.lives.append(asyncio.create_task(client.live(opened)))

        await asyncio.gather(*(start(c) for c in self.clients[first:]))
        fresh = self.clients[first:]
        refusals: Counter[str] = Counter()
        for c in fresh:
            refusals.update(c.refusals)
        return {
            "subscribed": sum(1 for c in fresh if c.subscribed),
            "unreachable": sum(c.unreachable for c in fresh),
            "refusals": dict(refusals),
        }

    async def op_status(self, final: int = -1) -> dict[str, Any]:
        """How many are back (a resume's history since the restart) and how many hold ``final``."""
        clients = self.clients
        return {
            "clients": len(clients),
            "open": sum(1 for c in clients if c.transport is not None),
            "closed_once": sum(1 for c in clients if c.closed_at is not None),
            "resumed": sum(1 for c in clients if c.resumed_at is not None),
            "on_final": sum(1 for c in clients if c.last == final),
            "phases": dict(Counter(c.phase for c in clients if c.resumed_at is None)),
            "ended": dict(Counter(_ending(t) for t in self.lives if t.done())),  # lives that stopped: a bug
        }

    async def op_collect(self, final: int, first_acknowledged: int) -> dict[str, Any]:
        """Each client's figures, summed, and the resume times of those that resumed."""
        clients = self.clients
        refusals: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        closes: Counter[str] = Counter()
        hole_at: Counter[str] = Counter()
        for c in clients:
            hole_at.update(c.hole_at)
            refusals.update(c.refusals)
            failed.update(c.failed)
            closes.update(c.closes)
        gap_free = [
            c
            for c in clients
            if c.holes == 0
            and c.repeats == 0
            and c.last == final
            and c.first is not None
            and c.first <= first_acknowledged
        ]
        return {
            "clients": len(clients),
            "gap_free": len(gap_free),
            "silent_holes": sum(1 for c in clients if c.holes and not c.told),
            "seqs_missed": sum(c.holes for c in clients),
            "with_repeats": sum(1 for c in clients if c.repeats),
            "told": sum(1 for c in clients if c.told),
            "not_on_final": sum(1 for c in clients if c.last != final),
            "resumed_at": [c.resumed_at for c in clients if c.resumed_at is not None],
            "closed_at": [c.closed_at for c in clients if c.closed_at is not None],
            "reconnect_seconds": [
                c.resumed_at - c.closed_at
                for c in clients
                if c.resumed_at is not None and c.closed_at is not None
            ],
            "attempts": sum(c.attempts for c in clients),
            "max_attempts": max((c.attempts for c in clients), default=0),
            "unreachable": sum(c.unreachable for c in clients),
            "refusals": dict(refusals),
            "refused_clients": sum(1 for c in clients if c.refusals),
            "failed": dict(failed),
            "close_codes": dict(closes),
            "hole_at": {k: v for k, v in hole_at.items() if v},
        }


def _ending(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return f"{type(exc).__name__}: {exc}"[:120] if exc is not None else "returned"


def storm_worker_main(conn: Connection, index: int, received: Any) -> None:
    import uvloop

    die_with_parent()
    raise_fd_limit()
    uvloop.run(StormWorker(conn, index).serve())
