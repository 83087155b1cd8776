"""The load generator: picows WebSocket clients on uvloop, in worker processes driven over pipes.

A client subscribes to the one ticker (``--channel patterns``: to ``patterns``, client ``i`` with the
``i``-th of the subscribe frames it is given, modulo their number) and then only counts. For each price
frame it reads the id (see ``frames``) and nothing else; every ``sample_every``-th frame of a group it also keeps (id, receive time). Nothing else runs per frame:
the orchestrator reads the frame counts at the start and the end of a window.
Two dialects: ``json`` (Legend and the bare servers: subscribe frame, ``history`` as the
acknowledgement) and ``sio`` (Socket.IO v5 over Engine.IO v4 on the raw websocket transport: open packet
``0{…}``, connect ``40``, events ``42[…]``, ping ``2`` answered with ``3``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.fanout.frames import (
    DATA_PREFIX,
    ID_KEY,
    READY_PREFIX,
    SIO_DATA_PREFIX,
    SIO_READY_PREFIX,
    SIO_SUBSCRIBE,
    SUBSCRIBE,
)
from bench.fanout.procs import die_with_parent, raise_fd_limit

TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE
# Clients connect from many loopback addresses, as many users would from their own machines, so that a
# server's per-address limits (Legend: realtime.max_connections_per_ip, connect_rate_per_ip and
# connect_burst_per_ip) stay as shipped: this many clients share an address, below the default burst.
PER_ADDRESS = 40
# What a browser offers: every message compressed on its own (issue 23's "compressed once").
DEFLATE_OFFER = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692: the end of a message's deflate stream, stripped


def source_address(worker: int, index: int) -> str:
    """The loopback address client ``index`` of ``worker`` connects from (127.1.0.1, 127.1.0.2, …)."""
    slot = index // PER_ADDRESS
    return f"127.{1 + worker}.{slot // 250}.{slot % 250 + 1}"


class Group:
    """The connections of one server in one worker, and what they received in the current window."""

    def __init__(
        self,
        dialect: str,
        sample_every: int,
        received: Any,
        slot: int,
        subscribes: Sequence[bytes] = (SUBSCRIBE,),
        data_prefix: bytes = DATA_PREFIX,
        id_key: bytes = ID_KEY,
        id_end: bytes = b",",
        deflate: bool = False,
    ) -> None:
        self.received = received  # the worker's slot in the pool's shared counters: frames this window
        self.slot = slot
        self.dialect = dialect
        self.subscribes = list(subscribes)  # client i sends subscribes[i % len]
        self.data_prefix = SIO_DATA_PREFIX if dialect == "sio" else data_prefix
        self.id_key = id_key  # the id is what follows id_key, up to id_end
        self.id_skip = len(id_key)
        self.id_end = id_end
        self.sample_every = sample_every
        self.deflate = deflate  # offer permessage-deflate, inflate RSV1 frames
        self.clients: list[Client] = []
        self.closed = 0
        self.errors: list[str] = []
        self.begin(0, 0)

    def begin(self, lo: int, hi: int) -> None:
        """A new window: count only ids in [lo, hi)."""
        self.lo = lo
        self.hi = hi
        self.frames = 0
        self.wire_bytes = 0  # payload bytes (as sent: compressed or not) of the frames counted
        self.compressed = 0  # of those frames, how many came compressed (RSV1)
        self.received[self.slot] = 0
        self.strays = (
            0  # price frames with an id outside the window (a previous window's, the quote poller's)
        )
        self.samples = array.array("d")  # id, receive time, id, receive time, …
        for client in self.clients:
            client.count = 0
            client.last = -1


class Client(WSListener):  # type: ignore[misc]
    """One subscribed connection: counts the frames of the current window."""

    def __init__(self, group: Group, subscribe: bytes = SUBSCRIBE) -> None:
        self.group = group
        self.subscribe = subscribe
        self.sio = group.dialect == "sio"
        self.transport: WSTransport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.count = 0
        self.last = -1
        self.close_code: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if not self.sio:
            transport.send(TEXT, self.subscribe)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.group.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribed ({self.close_code})"))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            if frame.msg_type == CLOSE:
                self.close_code = frame.get_close_code().value
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        wire = len(payload)
        if frame.rsv1:  # permessage-deflate: each message on its own (no context takeover)
            payload = zlib.decompressobj(-15).decompress(payload + DEFLATE_TAIL)
        group = self.group
        if payload.startswith(group.data_prefix):
            i = payload.find(group.id_key) + group.id_skip
            try:
                ident = int(payload[i : payload.find(group.id_end, i)])
            except ValueError:
                ident = -1
            if group.lo <= ident < group.hi:
                self.count += 1
                self.last = ident
                group.frames += 1
                group.wire_bytes += wire
                group.compressed += frame.rsv1
                group.received[group.slot] = group.frames
                if group.frames % group.sample_every == 0:
                    group.samples.append(ident)
                    group.samples.append(time.time())
            else:
                group.strays += 1
        elif self.sio:
            self._engine_io(transport, payload)
        elif payload.startswith(READY_PREFIX):
            if not self.ready.done():
                self.ready.set_result(None)
        elif payload.startswith(b'{"type":"error"') and len(group.errors) < 5:
            group.errors.append(payload[:300].decode(errors="replace"))

    def _engine_io(self, transport: WSTransport, payload: bytes) -> None:
        if payload == b"2":  # Engine.IO ping
            transport.send(TEXT, b"3")
        elif payload.startswith(b"40"):  # Socket.IO connected to namespace "/"
            transport.send(TEXT, SIO_SUBSCRIBE)
        elif payload.startswith(b"0"):  # Engine.IO open: connect to the default namespace
            transport.send(TEXT, b"40")
        elif payload.startswith(SIO_READY_PREFIX):
            if not self.ready.done():
                self.ready.set_result(None)
        elif payload.startswith((b"41", b"44")) and not self.ready.done():
            self.ready.set_exception(ConnectionError(f"Socket.IO refused: {payload[:200]!r}"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


class CommandLoop:
    """A client process's side of its pipe to the bench: run each command (``op_<name>``) as it comes, send
    back the answer (or the error), until told to stop; then ``stopped``."""

    conn: Connection

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command: dict[str, Any] | None = await loop.run_in_executor(None, self._receive)
            if command is None or command["op"] == "stop":
                break
            try:
                reply = await getattr(self, f"op_{command['op']}")(**command.get("args", {}))
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            reply["call"] = command["call"]
            self.conn.send(reply)
        self.stopped()

    def stopped(self) -> None:
        pass

    def _receive(self) -> dict[str, Any] | None:
        try:
            command: dict[str, Any] = self.conn.recv()
            return command
        except (EOFError, OSError):
            return None


class Worker(CommandLoop):
    """Runs in a client process: executes the orchestrator's commands, one at a time."""

    def __init__(self, conn: Connection, index: int, received: Any) -> None:
        self.conn = conn
        self.index = index
        self.received = received
        self.groups: dict[str, Group] = {}

    def stopped(self) -> None:
        """Told to stop: drop every client's connection at once."""
        for group in self.groups.values():
            for client in group.clients:
                if client.transport is not None:
                    client.transport.disconnect(graceful=False)

    async def op_connect(
        self,
        group: str,
        url: str,
        dialect: str,
        count: int,
        sample_every: int,
        concurrency: int = 64,
        stream: dict[str, Any] | None = None,
        deflate: bool = False,
    ) -> dict[str, Any]:
        """Open ``count`` more subscribed connections in ``group``; ``{index}`` in ``url`` is made unique.
        ``stream`` (``--channel patterns``): the subscribe frames and how a data frame and its id look;
        ``deflate``: the connections offer permessage-deflate."""
        members = self.groups.get(group)
        if members is None:
            members = self.groups[group] = Group(
                dialect, sample_every, self.received, self.index, **(stream or {}), deflate=deflate
            )
        limit = asyncio.Semaphore(concurrency)
        first = len(members.clients)
        subscribes = members.subscribes

        async def one(index: int) -> Client:
            async with limit:
                _, client = await ws_connect(
                    lambda: Client(members, subscribes[index % len(subscribes)]),
                    url.format(index=f"w{self.index}c{index}"),
                    extra_headers={"Sec-WebSocket-Extensions": DEFLATE_OFFER} if members.deflate else None,
                    websocket_handshake_timeout=60,
                    read_buffer_init_size=4096,
                    local_addr=(source_address(self.index, index), 0),
                )
                try:
                    async with asyncio.timeout(60):
                        await client.ready
                except BaseException:
                    client.close()
                    raise
                return client

        results = await asyncio.gather(*(one(first + i) for i in range(count)), return_exceptions=True)
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        members.clients.extend(r for r in results if isinstance(r, Client))
        return {"connected": len(results) - len(errors), "errors": errors[:3] + members.errors[:2]}

    async def op_shrink(self, group: str, keep: int) -> dict[str, Any]:
        """Forget the group's closed connections, close those beyond the first ``keep``; how many are open."""
        members = self.groups[group]
        alive = [c for c in members.clients if c.transport is not None and not c.transport.is_disconnected]
        extra, members.clients = alive[keep:], alive[:keep]
        for client in extra:
            client.close()
        async with asyncio.timeout(30):
            for client in extra:
                if client.transport is not None:
                    await client.transport.wait_disconnected()
        members.closed = 0
        return {"open": len(members.clients), "closed_now": len(extra)}

    async def op_begin(self, group: str, lo: int, hi: int) -> dict[str, Any]:
        self.groups[group].begin(lo, hi)
        return {}

    async def op_collect(self, group: str, last_id: int) -> dict[str, Any]:
        members = self.groups[group]
        counts = [c.count for c in members.clients]
        return {
            "frames": members.frames,
            "wire_bytes": members.wire_bytes,
            "compressed": members.compressed,
            "strays": members.strays,
            "closed": members.closed,
            "close_codes": dict(Counter(c.close_code for c in members.clients if c.close_code is not None)),
            "samples": members.samples.tobytes(),
            "clients": len(counts),
            "on_last": sum(1 for c in members.clients if c.last == last_id),
            "without_any": counts.count(0),
            "min_count": min(counts, default=0),
            "max_count": max(counts, default=0),
            "errors": members.errors[:3],
        }


def worker_main(conn: Connection, index: int, received: Any) -> None:
    import uvloop

    die_with_parent()
    raise_fd_limit()
    uvloop.run(Worker(conn, index, received).serve())


class ClientPool:
    """The client processes; a command goes to every worker and all replies come back."""

    def __init__(self, processes: int, main: Callable[[Connection, int, Any], None] | None = None) -> None:
        """``processes`` workers running ``main`` (default ``worker_main``: the fan-out's ``Worker``)."""
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.calls = 0
        # Frames of the current window per worker, in shared memory: read without a round trip (the
        # publisher's gate reads them before every saturated publish).
        self.received = ctx.RawArray("q", processes)
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(processes):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=main or worker_main, args=(theirs, index, self.received), daemon=True
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def frames(self) -> int:
        """Frames of the current window received by all workers so far."""
        return sum(self.received)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    async def call(self, op: str, each: Sequence[dict[str, Any]] | None = None, **args: Any) -> list[Any]:
        """Send ``op`` to every worker (``each`` gives per-worker arguments) and return their replies."""
        self.calls += 1
        for i, pipe in enumerate(self.pipes):
            pipe.send({"op": op, "call": self.calls, "args": {**args, **(each[i] if each else {})}})
        replies = await asyncio.gather(*(self._reply(pipe, op, self.calls) for pipe in self.pipes))
        for reply in replies:
            if "error" in reply:
                raise RuntimeError(f"client worker failed in {op}: {reply['error']}")
        return replies

    @staticmethod
    async def _reply(pipe: Connection, op: str, call: int) -> Any:
        """The worker's answer to ``call``, waited for on the event loop (no thread to outlive a stop)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(300):
                while True:
                    while not pipe.poll():
                        readable = loop.create_future()
                        loop.add_reader(pipe.fileno(), lambda f=readable: f.done() or f.set_result(None))
                        try:
                            await readable
                        finally:
                            loop.remove_reader(pipe.fileno())
                            os.set_blocking(pipe.fileno(), True)  # add_reader made it non-blocking
                    reply = pipe.recv()  # a large answer arrives in pieces: read all of it
                    if reply.get("call") == call:
                        return reply
                    print(
                        f"  ! client worker: answer to call {reply.get('call')} while waiting for {call} ({op}): {sorted(reply)}",
                        flush=True,
                    )
        except TimeoutError:
            raise TimeoutError(f"client worker did not answer {op} in 300 s") from None

    def split(self, total: int) -> list[int]:
        """``total`` spread over the workers."""
        n = len(self.pipes)
        return [total // n + (1 if i < total % n else 0) for i in range(n)]

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send({"op": "stop"})
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(2)
