"""Fan-out benchmark: Legend Realtime against a bare Litestar fan-out server, reported as ratios.

Both servers run at the same time, each in its own process, on 127.0.0.1:

* **legend**: ``python -m legend serve`` with a generated settings file (streamer quiet, large outbox);
* **baseline**: a bare Litestar app under uvicorn (``websockets-sansio``, no per-message deflate), defined
  in this file: one WebSocket route that keeps an ``asyncio.Queue`` and a writer task per connection and
  one POST route that puts the posted body (decoded once to ``str``) on every queue.

The same client processes hold N connections to each server (raw asyncio WebSocket clients that scan frame
headers and only look into a frame to recognise it and, for a sample, to read the send timestamp that the
publisher put in the alert's ``message``). The publisher posts pattern alerts over persistent HTTP/1.1
connections. For each connection count it measures, per server:

* saturation: the publisher posts as fast as the server answers; deliveries/s, server CPU, latency;
* fixed load: both servers get the same offered publish rate (a fraction of the slower one's saturated
  rate), so that their latencies compare at equal load;

and reports Legend as ratios to the baseline of the same run. A last phase checks price conflation on
Legend (100 clients on ``ticker:BENCH``, 200 updates/s). Absolute numbers are printed as context only:
they move ±20% between runs on a shared machine, the ratios much less.

    .venv/bin/python bench/bench_fanout.py [--connections 500] [--seconds 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import ctypes
import json
import multiprocessing
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ADMIN_TOKEN = "bench"
REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# A frame the clients count starts with one of these; the ``history`` reply marks a subscription as ready.
DATA_PREFIXES = (b'{"type":"pattern_alert"', b'{"type":"price_update"')
READY_PREFIX = b'{"type":"history"'
MESSAGE_KEY = b'"message":"'

PATTERN_FIELDS = (
    '"ticker":"BENCH","pattern_type":"breakout","score":87.5,"entry_price":100.0,"stop_price":95.0,'
    '"target_price":110.0'
)
# What Legend sends for a pattern alert (the baseline is handed the same frame, so both move equal bytes).
BASELINE_FRAME = (
    '{"type":"pattern_alert",' + PATTERN_FIELDS + ',"risk_reward_ratio":2.0,"message":"%s",'
    '"timestamp":"2025-01-02T15:04:05.123Z","channel":"patterns","seq":%d}'
)
LEGEND_BODY = "{" + PATTERN_FIELDS + ',"message":"%s"}'
BASELINE_ACK = '{"type":"history","channel":"patterns","messages":[],"seq":0}'


# ───────────────────────────── processes ─────────────────────────────


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), so nothing outlives a run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server under test: started with ``argv``, ready when ``GET health_path`` answers 200."""

    def __init__(self, name: str, argv: list[str], port: int, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=1.0) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)
        self._log.close()


def server_env(pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEGEND_", "REALTIME_", "REDIS_URL"))}
    env["PYTHONUNBUFFERED"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH")) if p)
    return env


def start_legend(root: Path, workdir: Path) -> ServerProcess:
    """``python -m legend serve`` from ``root``; its working directory (and so its SQLite file) in ``workdir``."""
    config = workdir / "legend-bench.toml"
    config.write_text(
        "[server]\n"
        'log_level = "warning"\n'
        "[security]\n"
        f'admin_token = "{ADMIN_TOKEN}"\n'
        "[realtime]\n"
        "update_interval = 3600\n"
        "after_hours_interval = 3600\n"
        "max_pending_messages = 100000\n"
        "stale_after = 3600\n",  # the clients only listen; a run lasts longer than the default 60 s
        encoding="utf-8",
    )
    port = free_port()
    argv = [sys.executable, "-m", "legend", "serve", "--port", str(port), "--config", str(config)]
    return ServerProcess("legend", argv, port, workdir, server_env(root))


def start_baseline(workdir: Path) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port)]
    return ServerProcess("baseline", argv, port, workdir, server_env())


# ───────────────────────────── the baseline server ─────────────────────────────


def serve_baseline(port: int) -> None:
    """The bare fan-out server: accept, one queue and writer task per connection, broadcast to all."""
    import uvicorn
    from litestar import Litestar, Request, WebSocket, get, post, websocket

    queues: set[asyncio.Queue[str]] = set()

    @websocket("/ws")
    async def stream(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        send = socket.send
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def writer() -> None:
            while True:
                text = await queue.get()
                await send({"type": "websocket.send", "text": text, "bytes": None})

        task = asyncio.get_running_loop().create_task(writer())
        try:
            while True:
                event = await socket.receive()
                if event["type"] != "websocket.receive":
                    break
                if queue not in queues:  # the first frame (a subscribe) joins the broadcast
                    queues.add(queue)
                    queue.put_nowait(BASELINE_ACK)
        finally:
            queues.discard(queue)
            task.cancel()

    @post("/broadcast", status_code=200)
    async def broadcast(request: Request[Any, Any, Any]) -> dict[str, int]:
        text = (await request.body()).decode()
        for queue in queues:
            queue.put_nowait(text)
        return {"recipients": len(queues)}

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app = Litestar([stream, broadcast, health])
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


# ───────────────────────────── clients (in worker processes) ─────────────────────────────


def masked_text_frame(payload: bytes) -> bytes:
    """A client text frame (clients must mask; an all-zero key leaves the payload as it is)."""
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2, "big")
    return header + b"\0\0\0\0" + payload


class Group:
    """The connections of one purpose (server and channel) in one worker, and what they received."""

    __slots__ = ("buckets", "clients", "closed", "frames", "keep_last", "sample_every", "samples")

    def __init__(self, sample_every: int, keep_last: bool) -> None:
        self.clients: list[WsClient] = []
        self.sample_every = sample_every
        self.keep_last = keep_last
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.closed = 0
        self.buckets: Counter[int] = Counter()  # data frames received per 100 ms
        self.samples = array.array("d")  # (send time, latency) pairs
        for client in self.clients:
            client.count = 0
            client.times = []


class WsClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, frame headers, pongs; counts data frames."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.count = 0
        self.last = b""
        self.times: list[float] = []
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.group.closed += 1
        for future in (self.handshake, self.ready):
            if not future.done():
                future.set_exception(ConnectionError(f"connection lost ({self.close_code})"))

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.handshake.set_exception(ConnectionError(data[:end].decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.handshake.set_result(None)
            data = data[end + 4 :]
        self._frames(data, time.time())

    def _frames(self, data: bytes, now: float) -> None:
        group = self.group
        size = len(data)
        pos = 0
        got = 0
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = data[pos] & 0x0F
            if opcode == 1:
                if data.startswith(DATA_PREFIXES, start, end):
                    got += 1
                    self.count += 1
                    if self.count % group.sample_every == 0:
                        i = data.find(MESSAGE_KEY, start, end)
                        if i >= 0:
                            i += len(MESSAGE_KEY)
                            with contextlib.suppress(ValueError):
                                sent = float(data[i : data.find(b'"', i, end)])
                                group.samples.extend((sent, now - sent))
                    if group.keep_last:
                        self.last = data[start:end]
                        self.times.append(now)
                elif not self.ready.done() and data.startswith(READY_PREFIX, start, end):
                    self.ready.set_result(None)
            elif opcode == 9 and self.transport is not None:  # ping: answer with a masked pong
                payload = data[start:end]
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 8 and self.transport is not None:
                self.close_code = int.from_bytes(data[start : start + 2], "big") if length >= 2 else 1005
                self.transport.close()
            pos = end
        if pos < size:
            self.buf = data[pos:]
        if got:
            group.frames += got
            group.buckets[int(now * 10)] += got

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(masked_text_frame(text.encode()))


class Worker:
    """Runs in a client process: executes the orchestrator's commands, one at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.groups: dict[str, Group] = {}

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
            self.conn.send(reply)
        for group in self.groups.values():
            for client in group.clients:
                if client.transport is not None:
                    client.transport.abort()

    def _receive(self) -> dict[str, Any] | None:
        try:
            command: dict[str, Any] = self.conn.recv()
            return command
        except (EOFError, OSError):
            return None

    async def op_connect(
        self, group: str, port: int, path: str, count: int, sample_every: int, keep_last: bool
    ) -> dict[str, Any]:
        """Open ``count`` more connections to ``port`` in ``group``."""
        members = self.groups.setdefault(group, Group(sample_every, keep_last))
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(32)
        first = len(members.clients)

        async def one(index: int) -> WsClient:
            async with limit:
                _, client = await loop.create_connection(lambda: WsClient(members), HOST, port)
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET {path.format(index=index)} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                assert client.transport is not None
                client.transport.write(request.encode())
                async with asyncio.timeout(20):
                    await client.handshake
                return client

        results = await asyncio.gather(
            *(one(os.getpid() * 100_000 + first + i) for i in range(count)), return_exceptions=True
        )
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        members.clients.extend(r for r in results if isinstance(r, WsClient))
        return {"connected": len(results) - len(errors), "errors": errors[:3]}

    async def op_subscribe(self, group: str, upto: int, message: str) -> dict[str, Any]:
        """Subscribe the group's connections up to index ``upto`` (those not yet subscribed)."""
        clients = [c for c in self.groups[group].clients[:upto] if not c.ready.done()]
        for client in clients:
            client.send_text(message)
        async with asyncio.timeout(30):
            results = await asyncio.gather(*(c.ready for c in clients), return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        return {"subscribed": len(clients) - len(errors), "errors": errors[:3]}

    async def op_reset(self) -> dict[str, Any]:
        for group in self.groups.values():
            group.reset()
        return {}

    async def op_totals(self, group: str) -> dict[str, Any]:
        members = self.groups[group]
        return {"frames": members.frames, "closed": members.closed}

    async def op_collect(self, group: str, per_client: bool = False) -> dict[str, Any]:
        members = self.groups[group]
        reply: dict[str, Any] = {
            "frames": members.frames,
            "closed": members.closed,
            "close_codes": dict(Counter(c.close_code for c in members.clients if c.close_code is not None)),
            "buckets": dict(members.buckets),
            "samples": members.samples.tobytes(),
        }
        if per_client:
            reply["clients"] = [(c.times, c.last) for c in members.clients if c.ready.done()]
        return reply


def worker_main(conn: Connection) -> None:
    die_with_parent()
    raise_fd_limit()
    asyncio.run(Worker(conn).serve())


class ClientPool:
    """The client processes, driven over pipes; commands go to every worker and all replies come back."""

    def __init__(self, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for _ in range(processes):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    async def call(self, op: str, each: Sequence[dict[str, Any]] | None = None, **args: Any) -> list[Any]:
        """Send ``op`` to every worker (``each`` gives per-worker arguments) and return their replies."""
        for i, pipe in enumerate(self.pipes):
            pipe.send({"op": op, "args": {**args, **(each[i] if each else {})}})
        replies = await asyncio.gather(*(asyncio.to_thread(self._reply, pipe, op) for pipe in self.pipes))
        for reply in replies:
            if "error" in reply:
                raise RuntimeError(f"client worker failed in {op}: {reply['error']}")
        return replies

    @staticmethod
    def _reply(pipe: Connection, op: str) -> Any:
        if not pipe.poll(120):
            raise TimeoutError(f"client worker did not answer {op} in 120 s")
        return pipe.recv()

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


# ───────────────────────────── publisher ─────────────────────────────


class HttpConnection:
    """A persistent HTTP/1.1 connection that POSTs JSON and reads Content-Length answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str]) -> HttpConnection:
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


@dataclass
class Target:
    """Where and what the publisher posts."""

    port: int
    path: str
    headers: dict[str, str]
    body: Callable[[int, float], bytes]  # (sequence number, send time) -> request body


@dataclass
class Published:
    posts: int = 0
    recipients: int = 0
    failures: int = 0
    last_seq: int = 0
    last_answer: dict[str, Any] = field(default_factory=dict)
    first_failure: str = ""


async def publish(
    target: Target, seconds: float, rate: float | None, lanes: int, max_posts: int = 1_000_000
) -> Published:
    """POST for ``seconds`` over ``lanes`` connections: as fast as answered, or paced to ``rate``/s."""
    result = Published()
    connections = [await HttpConnection.open(target.port, target.path, target.headers) for _ in range(lanes)]
    start = time.monotonic()
    deadline = start + seconds
    counter = iter(range(1, max_posts + 1))

    async def lane(index: int, conn: HttpConnection) -> None:
        interval = lanes / rate if rate else 0.0
        due = start + index * (interval / lanes)
        while (now := time.monotonic()) < deadline:
            if rate:
                if due > now:
                    await asyncio.sleep(due - now)
                due += interval
            seq = next(counter, None)
            if seq is None:
                return
            async with asyncio.timeout(30):
                status, answer = await conn.post(target.body(seq, time.time()))
            if status != 200:
                result.failures += 1
                result.first_failure = result.first_failure or f"{status} {answer[:200]!r}"
                continue
            result.posts += 1
            result.last_seq = max(result.last_seq, seq)
            result.last_answer = json.loads(answer)
            result.recipients += int(result.last_answer.get("recipients", 0))

    try:
        await asyncio.gather(*(lane(i, c) for i, c in enumerate(connections)))
    finally:
        for conn in connections:
            conn.close()
    return result


# ───────────────────────────── measurements ─────────────────────────────


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def machine_busy_seconds() -> float:
    """CPU-seconds all CPUs of the machine spent busy since boot (everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


@dataclass
class Window:
    """Raw figures of one publishing window against one server."""

    seconds: float  # measured, after the warm-up
    elapsed: float  # publishing time, warm-up included
    posts: int
    deliveries: int  # received in the measured window
    server_cpu: float  # CPU-seconds in the measured window
    clients_cpu: float
    publisher_cpu: float
    machine_busy: float
    latencies: list[float]  # seconds, for alerts sent in the measured window
    expected: int  # deliveries the server promised (sum of "recipients")
    delivered: int  # deliveries counted once drained
    closed: int
    failures: int


@dataclass
class Phase:
    """One kind of load against one server: the sum of its windows."""

    server: str
    connections: int
    offered_rate: float | None  # publishes/s; None = as fast as the server answers
    seconds: float = 0.0
    publishes_per_s: float = 0.0
    deliveries_per_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")  # median over the windows of each window's p99 (p50 likewise)
    p99_pooled_ms: float = float("nan")  # over all samples of all windows
    max_ms: float = float("nan")
    server_cpu_pct: float = 0.0
    clients_cpu_pct: float = 0.0
    publisher_cpu_pct: float = 0.0
    others_cpu_pct: float = 0.0  # the rest of the machine's busy time: other processes
    cpu_us_per_delivery: float = float("nan")
    deliveries_per_cpu_s: float = 0.0
    expected: int = 0
    delivered: int = 0
    closed: int = 0
    failures: int = 0
    samples: int = 0

    @classmethod
    def of(cls, server: str, connections: int, rate: float | None, windows: Sequence[Window]) -> Phase:
        phase = cls(server, connections, rate)
        seconds = phase.seconds = sum(w.seconds for w in windows)
        deliveries = sum(w.deliveries for w in windows)
        server_cpu = sum(w.server_cpu for w in windows)
        clients_cpu = sum(w.clients_cpu for w in windows)
        publisher_cpu = sum(w.publisher_cpu for w in windows)
        phase.publishes_per_s = sum(w.posts for w in windows) / sum(w.elapsed for w in windows)
        phase.deliveries_per_s = deliveries / seconds
        phase.server_cpu_pct = 100 * server_cpu / seconds
        phase.clients_cpu_pct = 100 * clients_cpu / seconds
        phase.publisher_cpu_pct = 100 * publisher_cpu / seconds
        busy = sum(w.machine_busy for w in windows)
        phase.others_cpu_pct = max(0.0, 100 * (busy - server_cpu - clients_cpu - publisher_cpu) / seconds)
        if deliveries:
            phase.cpu_us_per_delivery = 1e6 * server_cpu / deliveries
        if server_cpu:
            phase.deliveries_per_cpu_s = deliveries / server_cpu
        # Percentiles per window, then the median over the windows: a neighbour's burst of CPU use during
        # one window (common on a shared machine) then moves one value instead of the whole tail.
        sampled = [w.latencies for w in windows if w.latencies]
        phase.samples = sum(len(x) for x in sampled)
        if sampled:
            phase.p50_ms = 1000 * statistics.median(percentile(x, 50) for x in sampled)
            phase.p99_ms = 1000 * statistics.median(percentile(x, 99) for x in sampled)
            phase.p99_pooled_ms = 1000 * percentile([v for x in sampled for v in x], 99)
            phase.max_ms = 1000 * max(max(x) for x in sampled)
        phase.expected = sum(w.expected for w in windows)
        phase.delivered = sum(w.delivered for w in windows)
        phase.closed = sum(w.closed for w in windows)
        phase.failures = sum(w.failures for w in windows)
        return phase


@dataclass
class ServerFigures:
    rss_idle_kib: int = 0
    rss_connected_kib: int = 0
    kib_per_connection: float = 0.0
    rss_after_kib: int = 0  # once every fan-out phase is done
    deliveries: int = 0  # in all fan-out phases
    growth_bytes_per_delivery: float = 0.0  # RSS growth over the fan-out phases, per delivery
    phases: list[Phase] = field(default_factory=list)


@dataclass
class Conflation:
    clients: int = 0
    published: int = 0
    offered_rate: float = 0.0
    mean_per_client_per_s: float = 0.0
    max_per_client_per_s: float = 0.0
    max_in_any_second: int = 0
    last_price: float = 0.0
    clients_with_last_price: int = 0
    clients_with_any_price: int = 0


@dataclass
class Report:
    connections: list[int]
    seconds: float
    rounds: int
    load: float
    lanes: int
    client_processes: int
    servers: dict[str, ServerFigures] = field(default_factory=dict)
    conflation: Conflation | None = None
    profiles: dict[str, str] = field(default_factory=dict)


NAMES = ("baseline", "legend")
WARMUP = 0.5  # seconds of each window that are published but not measured


class Bench:
    def __init__(self, args: argparse.Namespace, servers: dict[str, ServerProcess], pool: ClientPool) -> None:
        self.args = args
        self.servers = servers
        self.pool = pool
        self.targets = {
            "baseline": Target(
                servers["baseline"].port,
                "/broadcast",
                {},
                lambda seq, at: (BASELINE_FRAME % (f"{at:.6f}", seq)).encode(),
            ),
            "legend": Target(
                servers["legend"].port,
                "/api/ws/broadcast/pattern",
                {"Authorization": f"Bearer {ADMIN_TOKEN}"},
                lambda seq, at: (LEGEND_BODY % f"{at:.6f}").encode(),
            ),
        }
        self.paths = {"baseline": "/ws", "legend": "/api/ws?user_id=bench{index}"}
        self.subscribe = '{"type":"subscribe","channel":"patterns"}'

    async def connect(self, name: str, group: str, total: int, path: str, keep_last: bool = False) -> None:
        each = [{"count": n} for n in self.pool.split(total)]
        replies = await self.pool.call(
            "connect",
            each,
            group=group,
            port=self.servers[name].port,
            path=path,
            sample_every=self.args.sample_every,
            keep_last=keep_last,
        )
        connected = sum(r["connected"] for r in replies)
        if connected != total:
            errors = [e for r in replies for e in r["errors"]]
            raise RuntimeError(f"{name}: only {connected}/{total} connections opened: {errors}")

    async def subscribe_upto(self, name: str, group: str, upto: int, message: str) -> None:
        each = [{"upto": n} for n in self.pool.split(upto)]
        replies = await self.pool.call("subscribe", each, group=group, message=message)
        errors = [e for r in replies for e in r["errors"]]
        if errors:
            raise RuntimeError(f"{name}: subscriptions failed: {errors}")

    async def window(self, name: str, rate: float | None, seconds: float) -> Window:
        """Publish for a warm-up plus ``seconds``; count what arrived in the window; wait for the rest."""
        server = self.servers[name]
        await self.pool.call("reset")
        lanes = self.args.lanes if rate is None else 1
        publisher = asyncio.create_task(publish(self.targets[name], WARMUP + seconds, rate, lanes))
        await asyncio.sleep(WARMUP)
        t0, cpu0, busy0, own0 = (
            time.time(),
            cpu_seconds(server.pid),
            machine_busy_seconds(),
            time.process_time(),
        )
        clients0 = sum(cpu_seconds(pid) for pid in self.pool.pids)
        published = await publisher
        t1, cpu1, busy1, own1 = (
            time.time(),
            cpu_seconds(server.pid),
            machine_busy_seconds(),
            time.process_time(),
        )
        clients1 = sum(cpu_seconds(pid) for pid in self.pool.pids)
        if published.failures:
            print(f"  ! {name}: {published.failures} publishes failed: {published.first_failure}")
        drain_deadline = time.monotonic() + 15
        while time.monotonic() < drain_deadline:
            totals = await self.pool.call("totals", group=name)
            if sum(t["frames"] for t in totals) >= published.recipients:
                break
            await asyncio.sleep(0.1)
        replies = await self.pool.call("collect", group=name)
        lo, hi = int(t0 * 10), int(t1 * 10)  # whole 100 ms buckets inside the window
        latencies: list[float] = []
        for reply in replies:
            pairs = array.array("d")
            pairs.frombytes(reply["samples"])
            latencies.extend(pairs[i + 1] for i in range(0, len(pairs), 2) if t0 <= pairs[i] < t1)
        return Window(
            seconds=(hi - lo) / 10,
            elapsed=WARMUP + seconds,
            posts=published.posts,
            deliveries=sum(n for r in replies for b, n in r["buckets"].items() if lo <= b < hi),
            server_cpu=(cpu1 - cpu0) * (hi - lo) / 10 / (t1 - t0),
            clients_cpu=(clients1 - clients0) * (hi - lo) / 10 / (t1 - t0),
            publisher_cpu=(own1 - own0) * (hi - lo) / 10 / (t1 - t0),
            machine_busy=(busy1 - busy0) * (hi - lo) / 10 / (t1 - t0),
            latencies=latencies,
            expected=published.recipients,
            delivered=sum(r["frames"] for r in replies),
            closed=sum(r["closed"] for r in replies),
            failures=published.failures,
        )

    async def measure(self, report: Report, connections: int, rate: float | None) -> dict[str, Phase]:
        """Both servers under the same load, in alternating order over ``rounds`` windows each."""
        rounds = self.args.rounds
        windows: dict[str, list[Window]] = {name: [] for name in NAMES}
        for r in range(rounds):
            for name in NAMES if r % 2 == 0 else NAMES[::-1]:
                windows[name].append(await self.window(name, rate, self.args.seconds / rounds))
        phases = {name: Phase.of(name, connections, rate, windows[name]) for name in NAMES}
        for name in NAMES:
            report.servers[name].phases.append(phases[name])
            print(f"  {describe(phases[name])}", flush=True)
        return phases

    async def profile(self, name: str, out_dir: Path) -> str:
        """One saturated window with py-spy attached to the server; returns the hot-spot summary."""
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            return "py-spy not installed (pip install py-spy)"
        out = out_dir / f"profile-{name}-{self.args.connections}.txt"
        seconds = self.args.seconds
        spy = await asyncio.create_subprocess_exec(
            str(py_spy),
            *("record", "--nonblocking", "--format", "raw", "--rate", "200"),
            *("--duration", str(int(seconds + WARMUP))),
            *("--pid", str(self.servers[name].pid), "--output", str(out)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            window = await self.window(name, None, seconds)
            print(f"  profiled: {describe(Phase.of(name, self.args.connections, None, [window]))}")
            async with asyncio.timeout(30):
                await spy.wait()
        finally:
            if spy.returncode is None:
                spy.kill()
                await spy.wait()
        return hot_spots(out) if out.exists() else f"py-spy wrote nothing (exit {spy.returncode})"

    async def conflation(self, clients: int, rate: float, seconds: float) -> Conflation:
        """Prices on ticker:BENCH at ``rate``/s: each client within its budget, all end on the last one."""
        await self.connect("legend", "prices", clients, "/api/ws?user_id=prices{index}", keep_last=True)
        await self.subscribe_upto(
            "legend", "prices", clients, '{"type":"subscribe","channel":"ticker","ticker":"BENCH"}'
        )
        await asyncio.sleep(1.5)  # the streamer's first quote for a new ticker goes out, the budget refills
        await self.pool.call("reset")
        target = Target(
            self.servers["legend"].port,
            "/api/ws/broadcast/price",
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            lambda seq, at: b'{"ticker":"BENCH","price":%.2f,"volume":%d}' % (100 + seq / 100, seq),
        )
        t0 = time.time()
        published = await publish(target, seconds, rate, 1)
        t1 = time.time()
        await asyncio.sleep(2.0)  # the newest price goes out once the budget allows
        replies = await self.pool.call("collect", group="prices", per_client=True)
        result = Conflation(clients=clients, published=published.posts, offered_rate=rate)
        result.last_price = 100 + published.last_seq / 100 if published.posts else 0.0
        rates: list[float] = []
        for reply in replies:
            for times, last in reply["clients"]:
                rates.append(sum(1 for t in times if t0 <= t < t1) / (t1 - t0))
                # Any 1-second window, less 20 ms for the client's own receive jitter.
                result.max_in_any_second = max(
                    result.max_in_any_second,
                    max((sum(1 for u in times if t <= u < t + 0.98) for t in times), default=0),
                )
                if last:
                    result.clients_with_any_price += 1
                    if abs(json.loads(last)["price"] - result.last_price) < 1e-9:
                        result.clients_with_last_price += 1
        result.mean_per_client_per_s = sum(rates) / len(rates) if rates else 0.0
        result.max_per_client_per_s = max(rates, default=0.0)
        return result

    async def run(self) -> Report:
        args = self.args
        points = sorted({min(args.small, args.connections), args.connections})
        report = Report(points, args.seconds, args.rounds, args.load, args.lanes, args.client_processes)
        for name in NAMES:
            figures = report.servers[name] = ServerFigures()
            figures.rss_idle_kib = rss_kib(self.servers[name].pid)
        for name in NAMES:
            await self.connect(name, name, args.connections, self.paths[name])
            await self.subscribe_upto(name, name, points[0], self.subscribe)
        await asyncio.sleep(1.0)
        for name in NAMES:
            figures = report.servers[name]
            figures.rss_connected_kib = rss_kib(self.servers[name].pid)
            figures.kib_per_connection = (figures.rss_connected_kib - figures.rss_idle_kib) / args.connections
        print(
            f"connected {args.connections} clients to each server: "
            + ", ".join(
                f"{n} +{report.servers[n].kib_per_connection:.1f} KiB RSS per connection" for n in NAMES
            ),
            flush=True,
        )
        for connections in points:
            for name in NAMES:
                await self.subscribe_upto(name, name, connections, self.subscribe)
            saturated = await self.measure(report, connections, None)
            rate = max(1.0, args.load * min(p.publishes_per_s for p in saturated.values()))
            await self.measure(report, connections, rate)
        for name in NAMES:
            figures = report.servers[name]
            figures.rss_after_kib = rss_kib(self.servers[name].pid)
            figures.deliveries = sum(p.delivered for p in figures.phases)
            growth = 1024 * (figures.rss_after_kib - figures.rss_connected_kib)
            figures.growth_bytes_per_delivery = growth / max(1, figures.deliveries)
        print(
            "RSS growth over the fan-out phases: "
            + ", ".join(
                f"{n} {(report.servers[n].rss_after_kib - report.servers[n].rss_connected_kib) / 1024:+.1f} MiB "
                f"for {report.servers[n].deliveries} deliveries"
                for n in NAMES
            ),
            flush=True,
        )
        if args.conflation_clients:
            report.conflation = await self.conflation(args.conflation_clients, 200.0, 5.0)
        if args.profile:
            for name in NAMES:
                report.profiles[name] = await self.profile(name, args.profile)
        return report


# ───────────────────────────── profiles ─────────────────────────────

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


# Frames under which everything runs: left out of the inclusive list.
_SCAFFOLD = re.compile(
    r"^(<module>|_run_module_as_main|_run_code|main|serve|serve_baseline|run|asyncio_run|Server\.run|"
    r"Runner\.run|BaseEventLoop\.(run_until_complete|run_forever|_run_once)|Handle\._run|"
    r"Thread\.(run|_bootstrap|_bootstrap_inner)) \("
)


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/", str(REPO_ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def hot_spots(raw: Path, top: int = 15) -> str:
    """Self and inclusive time per function from py-spy's raw (collapsed) output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        names = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None:
                names.append(frame)
                continue
            where = _short(match["file"])
            names.append(f"{match['func']} ({where}:{match['line']})" if match["line"] else frame)
        self_time[names[-1]] += count
        for name in {re.sub(r":\d+\)$", ")", n) for n in names}:  # inclusive: per function, not per line
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples at 200 Hz, % of all samples; self time (leaf frame, file:line):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("inclusive time (function; the event loop and start-up frames left out):")
    kept = [(name, n) for name, n in inclusive.most_common() if not _SCAFFOLD.match(name)]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in kept[: top + 10]]
    return "\n".join(lines)


# ───────────────────────────── output ─────────────────────────────


def describe(phase: Phase) -> str:
    load = "saturated" if phase.offered_rate is None else f"{phase.offered_rate:.0f} pub/s offered"
    lost = phase.expected - phase.delivered
    return (
        f"{phase.server:8} n={phase.connections:<5} {load:18} {phase.publishes_per_s:6.1f} pub/s "
        f"{phase.deliveries_per_s:7.0f} deliv/s  p50 {phase.p50_ms:6.1f} ms  p99 {phase.p99_ms:6.1f} ms  "
        f"server cpu {phase.server_cpu_pct:3.0f}% = {phase.cpu_us_per_delivery:4.1f} µs/deliv  "
        f"(clients {phase.clients_cpu_pct:3.0f}%, publisher {phase.publisher_cpu_pct:2.0f}%, "
        f"others {phase.others_cpu_pct:3.0f}%)"
        + (f"  UNDELIVERED {lost}" if lost else "")
        + (f"  CLOSED {phase.closed}" if phase.closed else "")
        + (f"  FAILED POSTS {phase.failures}" if phase.failures else "")
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def ratios(report: Report) -> list[tuple[str, float]]:
    """The headline figures: Legend / baseline."""
    base, legend = report.servers["baseline"], report.servers["legend"]
    found = [("memory per connection", ratio(legend.kib_per_connection, base.kib_per_connection))]
    for b, ours in zip(base.phases, legend.phases, strict=True):
        where = f"n={b.connections}"
        if b.offered_rate is None:
            found += [
                (
                    f"{where} throughput (deliveries/s, saturated)",
                    ratio(ours.deliveries_per_s, b.deliveries_per_s),
                ),
                (
                    f"{where} server CPU per delivery (saturated)",
                    ratio(ours.cpu_us_per_delivery, b.cpu_us_per_delivery),
                ),
            ]
        else:
            found += [
                (f"{where} p50 latency (same offered load)", ratio(ours.p50_ms, b.p50_ms)),
                (f"{where} p99 latency (same offered load)", ratio(ours.p99_ms, b.p99_ms)),
                (
                    f"{where} server CPU per delivery (same load)",
                    ratio(ours.cpu_us_per_delivery, b.cpu_us_per_delivery),
                ),
            ]
    return found


def summary(report: Report) -> str:
    out = ["", "Legend / baseline, same run (throughput: higher is better; the rest: lower is better)"]
    out += [f"  {label:46} {value:5.2f}x" for label, value in ratios(report)]
    if report.conflation:
        c = report.conflation
        ok = c.max_in_any_second <= 10 and c.clients_with_last_price == c.clients
        out += [
            "",
            f"Conflation on Legend ({c.clients} clients on ticker:BENCH, {c.published} prices at "
            f"{c.offered_rate:.0f}/s for 5 s):",
            f"  per client {c.mean_per_client_per_s:.1f}/s on average, {c.max_per_client_per_s:.1f}/s at most, "
            f"{c.max_in_any_second} in any 1 s window (budget 10)",
            f"  last price {c.last_price:.2f} received last by {c.clients_with_last_price}/{c.clients} clients: "
            + ("OK" if ok else "FAILED"),
        ]
    for name, text in report.profiles.items():
        out += ["", f"py-spy profile of {name}, saturated, n={report.connections[-1]}:", text]
    out.append("\nAbsolute figures are this machine, this run: compare the ratios across runs.")
    return "\n".join(out)


# ───────────────────────────── main ─────────────────────────────


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=500, help="clients per server (default 500)")
    parser.add_argument("--small", type=int, default=100, help="the smaller point measured too (default 100)")
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per server and load (default 6)"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="windows per server and load, in alternating order (default 4)"
    )
    parser.add_argument("--lanes", type=int, default=1, help="concurrent publisher connections (default 1)")
    parser.add_argument(
        "--load", type=float, default=0.5, help="fixed load, as a fraction of the slower saturated rate"
    )
    parser.add_argument("--client-processes", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--sample-every", type=int, default=4, help="read the timestamp of every k-th frame")
    parser.add_argument("--conflation-clients", type=int, default=100, help="0 skips the conflation check")
    parser.add_argument("--legend-root", type=Path, default=REPO_ROOT, help="checkout to run Legend from")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="then profile both servers with py-spy into DIR"
    )
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.connections, args.client_processes, args.lanes, args.rounds) < 1 or args.seconds <= 0:
        parser.error("--connections, --seconds, --rounds, --client-processes and --lanes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_baseline:
        die_with_parent()
        serve_baseline(args.serve_baseline)
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit()
    needed = 2 * args.connections + args.conflation_clients + 200
    if limit < needed:
        print(f"file descriptor limit {limit} is below the {needed} this run needs", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the cleanup below runs
    started = time.monotonic()
    servers: dict[str, ServerProcess] = {}
    pool: ClientPool | None = None
    with tempfile.TemporaryDirectory(prefix="legend-bench-") as tmp:
        workdir = Path(tmp)
        try:
            servers["baseline"] = start_baseline(workdir)
            servers["legend"] = start_legend(args.legend_root, workdir)
            pool = ClientPool(args.client_processes)
            for server in servers.values():
                server.wait_ready()
            print(
                f"fan-out benchmark: {args.connections} (and {min(args.small, args.connections)}) clients "
                f"per server, {args.seconds:g} s per phase, {args.client_processes} client processes, "
                f"{os.cpu_count()} CPUs"
            )
            report = asyncio.run(Bench(args, servers, pool).run())
        finally:
            if pool is not None:
                pool.stop()
            for server in servers.values():
                try:
                    server.stop()
                except Exception as exc:  # keep stopping the others; each child also dies with us
                    print(f"could not stop {server.name}: {exc!r}", file=sys.stderr)
    print(summary(report))
    print(f"finished in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
