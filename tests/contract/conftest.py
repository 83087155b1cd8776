"""Fixtures for the backplane contract: the same tests against every adapter, Redis being a real server."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.redis import RedisBackplane
from legend.domain.envelope import Envelope
from legend.ports.backplane import Backplane
from legend.ports.cluster import ClusterMembership
from legend.runtime.message_bus import MessageBus
from legend.settings import RedisSettings
from tests.support.redis_server import RedisServer

_ids = itertools.count(1)


class Recorder:
    """The deliver callback: keeps every envelope and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._arrived = asyncio.Event()

    def __call__(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)
        self._arrived.set()

    def of(self, stream: str) -> list[Envelope]:
        return [env for env in self.envelopes if env.stream == stream]

    async def wait_for(self, count: int, stream: str | None = None, timeout: float = 5.0) -> list[Envelope]:
        """At least ``count`` envelopes (of ``stream``), waiting up to ``timeout`` for them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.envelopes if stream is None else self.of(stream)
            if len(got) >= count:
                return list(got)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {count} envelopes of {stream or 'any stream'}, got {got}")
            self._arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                pass


async def eventually(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll ``condition`` (sync or async) until it is truthy; returns the seconds it took."""
    started = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.01)


class Node:
    """One backplane instance, its cluster membership, what it delivered, and the bus it announces on."""

    def __init__(
        self, backplane: Backplane, cluster: ClusterMembership, recorder: Recorder, bus: MessageBus
    ) -> None:
        self.backplane = backplane
        self.cluster = cluster
        self.recorder = recorder
        self.bus = bus

    @property
    def redis(self) -> RedisBackplane:
        assert isinstance(self.backplane, RedisBackplane)
        return self.backplane


def redis_settings(url: str, **overrides: Any) -> RedisSettings:
    """Short timeouts and backoff so that failure tests finish in seconds."""
    values: dict[str, Any] = {
        "url": url,
        "connect_timeout": 0.5,
        "socket_timeout": 0.5,
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.3,
        "health_check_interval": 1.0,
        **overrides,
    }
    return RedisSettings(**values)


class Nodes:
    """Makes started backplanes of one kind; on Redis they share one private ``redis-server``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.nodes: list[Node] = []
        self._server: RedisServer | None = None

    @property
    def server(self) -> RedisServer:
        if self._server is None:
            self._server = RedisServer().start()
        return self._server

    async def make(self, **overrides: Any) -> Node:
        recorder = Recorder()
        bus = MessageBus()
        backplane: Backplane
        cluster: ClusterMembership
        if self.kind == "memory":
            backplane = cluster = InMemoryBackplane()
        else:
            settings = redis_settings(**{"url": self.server.url, **overrides})
            backplane = RedisBackplane(settings, instance_id=f"node{next(_ids)}", bus=bus)
            cluster = backplane.membership
        await backplane.start(recorder)
        await cluster.join(dict)  # as bootstrap does once the backplane is up (no figures here)
        node = Node(backplane, cluster, recorder, bus)
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            async with asyncio.timeout(5):
                await node.backplane.stop()
        if self._server is not None:
            self._server.close()


@pytest.fixture(params=["memory", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    """Backplanes of each kind in turn."""
    made = Nodes(request.param)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis_nodes() -> AsyncIterator[Nodes]:
    """Redis backplanes only, on a private server that the test may kill and restart."""
    made = Nodes("redis")
    try:
        yield made
    finally:
        await made.close()


class Proxy:
    """A TCP relay to Redis that can freeze: connections stay open but nothing passes, like a network
    partition or a stopped (SIGSTOP) server, the failure that timeouts exist for."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def proxy(redis_nodes: Nodes) -> AsyncIterator[Proxy]:
    relay = await Proxy(redis_nodes.server.port).start()
    try:
        yield relay
    finally:
        await relay.close()
