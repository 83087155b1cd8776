"""A fault-injecting TCP proxy on 127.0.0.1, for partition tests: cut, reset or slow one instance's link.

``FaultProxy(backend_port).start()`` listens on a free port and forwards every connection to the backend.
A test switches it at run time, from any thread:

- ``pass_through()``: bytes flow both ways as they come.
- ``blackhole()``: a silent cut. Connections stay open (no FIN, no RST) and new ones are accepted, but
  every byte read in either direction is dropped, and a close is not passed on while the cut lasts. A
  connection that lost bytes has a hole in its stream, so it stays cut after healing (its later bytes are
  dropped too) until either side closes it; that close is passed on once healed, as a retransmitted FIN
  would be. A connection that was idle through the cut carries on, like an idle TCP connection does.
- ``reset()``: every connection, open or new, is closed with RST (``SO_LINGER`` 0) on both sides.
- ``delay(seconds)``: each chunk is forwarded ``seconds`` after it was read, order kept per direction.

Each switch returns once the proxy's thread applied it. One thread serves every connection (a selector),
memory is bounded (a direction with ``MAX_PENDING`` bytes waiting stops reading its source), and
``close()`` stops the thread and closes every socket.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["pass", "blackhole", "reset", "delay"]

CHUNK = 65_536
MAX_PENDING = 1 << 20  # bytes waiting in one direction before its source is no longer read
TICK = 0.05  # the longest the thread sleeps without looking at a pending switch or a due chunk


def _rst(sock: socket.socket) -> None:
    """Close ``sock`` with a reset rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Direction:
    """Bytes from ``source`` to ``target``: what was read and waits to be written (with when it is due)."""

    __slots__ = ("eof", "pending", "pipe", "queued", "source", "target")

    def __init__(self, pipe: _Pipe, source: socket.socket, target: socket.socket | None) -> None:
        self.pipe = pipe
        self.source = source
        self.target = target
        self.queued: collections.deque[tuple[float, bytes]] = collections.deque()
        self.pending = 0  # bytes in ``queued``
        self.eof = False  # the source closed its side

    def drop(self) -> bool:
        """Forget what waits; True when something was lost."""
        lost = bool(self.queued)
        self.queued.clear()
        self.pending = 0
        return lost


class _Pipe:
    """One proxied connection: the client's socket, the backend's (None when accepted during a cut), and
    whether it lost bytes (``broken``: it is never forwarded again)."""

    __slots__ = ("backend", "broken", "client", "down", "up")

    def __init__(self, client: socket.socket, backend: socket.socket | None) -> None:
        self.client = client
        self.backend = backend
        self.up = _Direction(self, client, backend)
        self.down = _Direction(self, backend, client) if backend is not None else None
        self.broken = backend is None

    def sockets(self) -> list[socket.socket]:
        return [self.client] if self.backend is None else [self.client, self.backend]

    def directions(self) -> list[_Direction]:
        return [self.up] if self.down is None else [self.up, self.down]


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``backend_host``:``backend_port``; ``start``, switch, ``close``."""

    def __init__(self, backend_port: int, backend_host: str = "127.0.0.1") -> None:
        self.backend = (backend_host, backend_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._pipes: list[_Pipe] = []
        self._lock = threading.Lock()
        self._wanted: tuple[Mode, float] = ("pass", 0.0)
        self._applied = threading.Condition(self._lock)
        self._generation = 0  # switches asked for
        self._done = 0  # switches applied by the thread
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.dropped = 0  # bytes dropped by blackholes
        self.resets = 0  # connections reset
        self.accepted = 0
        self.closes_seen = 0  # sources that closed their side (passed on at once, or once healed)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"fault-proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The proxy as a Redis URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pipes)

    def start(self) -> FaultProxy:
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ───────────────────────── switches ─────────────────────────

    def pass_through(self) -> None:
        self._switch("pass", 0.0)

    def blackhole(self) -> None:
        self._switch("blackhole", 0.0)

    def reset(self) -> None:
        self._switch("reset", 0.0)

    def delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        self._switch("delay", seconds)

    def _switch(self, mode: Mode, latency: float, timeout: float = 5.0) -> None:
        """Ask the thread for ``mode`` and wait (bounded) until it applied it."""
        with self._lock:
            if self._stop:
                raise RuntimeError("the proxy is closed")
            self._wanted = (mode, latency)
            self._generation += 1
            generation = self._generation
        self._wake_w.send(b"x")
        with self._applied:
            if not self._applied.wait_for(lambda: self._done >= generation, timeout):
                raise TimeoutError(f"the proxy did not switch to {mode} within {timeout} s")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every socket (bounded)."""
        with self._lock:
            self._stop = True
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join(timeout)
        for pipe in self._pipes:
            for sock in pipe.sockets():
                sock.close()
        self._pipes.clear()
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    # ───────────────────────── the thread ─────────────────────────

    def _run(self) -> None:
        while True:
            with self._lock:
                stop, wanted, generation = self._stop, self._wanted, self._generation
            if stop:
                return
            if generation != self._done:
                self._apply(*wanted)
                with self._applied:
                    self._done = generation
                    self._applied.notify_all()
            timeout = self._flush()
            for key, events in self._selector.select(timeout):
                sock = key.fileobj
                if sock is self._wake_r:
                    try:
                        while self._wake_r.recv(256):
                            pass
                    except BlockingIOError:
                        pass
                elif sock is self._listener:
                    self._accept()
                elif key.data is not None and events & selectors.EVENT_READ:
                    self._read(key.data.pipe, key.data)

    def _apply(self, mode: Mode, latency: float) -> None:
        self.mode, self.latency = mode, latency
        if mode == "reset":
            for pipe in list(self._pipes):
                self._end(pipe, rst=True)
        elif mode == "blackhole":
            for pipe in self._pipes:
                for direction in pipe.directions():
                    lost = direction.drop()
                    if lost:
                        pipe.broken = True
                    self._interest(direction)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.accepted += 1
            if self.mode == "reset":
                self.resets += 1
                _rst(client)
                continue
            backend: socket.socket | None = None
            if self.mode != "blackhole":
                try:
                    backend = socket.create_connection(self.backend, timeout=2.0)
                except OSError:
                    client.close()
                    continue
                backend.setblocking(False)
                backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipe = _Pipe(client, backend)
            with self._lock:
                self._pipes.append(pipe)
            for direction in pipe.directions():
                self._selector.register(direction.source, selectors.EVENT_READ, direction)

    def _read(self, pipe: _Pipe, direction: _Direction) -> None:
        try:
            data = direction.source.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._end(pipe, rst=True)  # the peer reset it: so does the other side
            return
        if not data:
            direction.eof = True
            self.closes_seen += 1
            self._interest(direction)
            if self.mode != "blackhole" and (pipe.broken or not direction.queued):
                self._end(pipe)
            return
        if self.mode == "blackhole" or pipe.broken:
            self.dropped += len(data)
            pipe.broken = True
            return
        direction.queued.append((time.monotonic() + self.latency, data))
        direction.pending += len(data)
        self._interest(direction)

    def _interest(self, direction: _Direction) -> None:
        """Read the source unless it closed, its target is backed up, or a cut holds its close."""
        wanted = not direction.eof and direction.pending < MAX_PENDING
        key = self._selector.get_map().get(direction.source)
        if wanted and key is None:
            self._selector.register(direction.source, selectors.EVENT_READ, direction)
        elif not wanted and key is not None:
            self._selector.unregister(direction.source)

    def _flush(self) -> float:
        """Write every due chunk; end the pipes whose source closed and that have nothing left to write.
        Returns how long the selector may sleep."""
        now = time.monotonic()
        sleep = TICK
        for pipe in list(self._pipes):
            for direction in pipe.directions():
                target = direction.target
                while direction.queued and target is not None and pipe in self._pipes:
                    due, data = direction.queued[0]
                    if due > now:
                        sleep = min(sleep, due - now)
                        break
                    try:
                        sent = target.send(data)
                    except (BlockingIOError, InterruptedError):
                        sleep = min(sleep, 0.005)
                        break
                    except OSError:
                        self._end(pipe, rst=True)
                        break
                    direction.pending -= sent
                    if sent < len(data):
                        direction.queued[0] = (due, data[sent:])
                        sleep = min(sleep, 0.005)
                        break
                    direction.queued.popleft()
                    self._interest(direction)
            closed = any(d.eof and (pipe.broken or not d.queued) for d in pipe.directions())
            if closed and pipe in self._pipes and self.mode != "blackhole":
                self._end(pipe)
        return max(sleep, 0.0)

    def _end(self, pipe: _Pipe, rst: bool = False) -> None:
        with self._lock:
            if pipe not in self._pipes:
                return
            self._pipes.remove(pipe)
        for sock in pipe.sockets():
            if sock in self._selector.get_map():
                self._selector.unregister(sock)
            if rst:
                _rst(sock)
            else:
                sock.close()
        if rst:
            self.resets += 1
