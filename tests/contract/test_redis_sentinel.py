"""The Redis backplane through Redis Sentinel: a real primary, replica and three sentinels on free ports.

SIGKILL the primary: the sentinels promote the replica, and the backplane follows them (the command
pool on its next connection, the listener on its reconnect) with nothing published lost or repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from legend.adapters.redis import RedisBackplane
from legend.ports.backplane import BackplaneUnavailable, Outgoing
from legend.settings import RedisSettings
from tests.contract.conftest import Recorder, eventually, redis_settings
from tests.contract.test_backplane_contract import body
from tests.support.redis_sentinel import RedisSentinel


@pytest.fixture(scope="module")
def sentinel() -> Iterator[RedisSentinel]:
    with RedisSentinel() as made:
        yield made


@pytest.fixture
async def make(sentinel: RedisSentinel) -> AsyncIterator[Any]:
    made: list[RedisBackplane] = []

    async def start(**overrides: Any) -> tuple[RedisBackplane, Recorder]:
        settings = redis_settings(
            None, sentinels=sentinel.sentinels, service_name=sentinel.service_name, **overrides
        )
        backplane = RedisBackplane(settings, instance_id=f"s{len(made)}")
        recorder = Recorder()
        await backplane.start(recorder)
        made.append(backplane)
        return backplane, recorder

    try:
        yield start
    finally:
        for backplane in made:
            await backplane.stop()


def test_sentinel_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="service_name: required"):
        RedisSettings(sentinels=["127.0.0.1:26379"])
    with pytest.raises(ValueError, match="expected 'host:port'"):
        RedisSettings(sentinels=["127.0.0.1"], service_name="x")
    with pytest.raises(ValueError, match="only meaningful with sentinels"):
        RedisSettings(url="redis://127.0.0.1:6379/0", service_name="x")
    assert RedisSettings(sentinels=["[::1]:26379"], service_name="x").enabled


async def publish(backplane: RedisBackplane, n: int) -> int:
    envelope = await backplane.publish(
        Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 100)
    )
    return envelope.seq


async def test_with_wait_replicas_a_publish_returns_once_a_replica_has_it(
    sentinel: RedisSentinel, make: Any
) -> None:
    backplane, _ = await make(wait_replicas=1)
    seq = await publish(backplane, 0)
    replica = next(node for node in sentinel.nodes if node.port != sentinel.primary_port())
    with redis.Redis(port=replica.port) as client:  # already there: WAIT returned after the replica had it
        assert int(client.get("legend:{patterns}:seq") or 0) == seq
    assert backplane.health()["unreplicated"] == 0
    greedy, _ = await make(wait_replicas=2)  # only one replica exists: published, but said so
    started = time.monotonic()
    assert await publish(greedy, 1) == seq + 1
    assert time.monotonic() - started >= 0.1  # WAIT waited wait_timeout for a second replica
    assert greedy.health()["unreplicated"] == 1


async def test_the_backplane_follows_a_failover_and_loses_nothing_it_acknowledged(
    sentinel: RedisSentinel, make: Any
) -> None:
    # a publish counts once a replica has it (wait_replicas): what the primary acknowledged before it died
    # is on the replica that takes over
    a, on_a = await make(wait_replicas=1)
    b, on_b = await make(wait_replicas=1)
    first = sentinel.primary_port()
    assert a.health()["ok"] and a.health()["primary"] == f"127.0.0.1:{first}"
    acked = [await publish(a, n) for n in range(5)]
    # a publish only counts once a replica has it: what the dying primary acknowledged is not lost
    await eventually(lambda: len(on_b.of("patterns")) == 5, what="delivered before the kill")

    sentinel.kill_primary()
    killed = time.monotonic()
    attempts = failures = 0
    while time.monotonic() - killed < 30 and len(acked) < 10:
        attempts += 1
        try:
            acked.append(await publish((a, b)[attempts % 2], len(acked)))
        except BackplaneUnavailable:
            failures += 1
            await asyncio.sleep(0.05)
    took = time.monotonic() - killed
    assert len(acked) == 10, f"no publish accepted within 30 s of the kill ({failures} refused)"
    assert failures > 0  # the failover is not instant: publishing is refused meanwhile, not lost
    assert sentinel.primary_port() != first
    for recorder in (on_a, on_b):
        await eventually(lambda r=recorder: len(r.of("patterns")) >= 10, timeout=15, what="delivered after")
        assert [env.seq for env in recorder.of("patterns")] == acked == list(range(acked[0], acked[0] + 10))
    for backplane in (a, b):
        await eventually(lambda bp=backplane: bp.health()["ok"], timeout=10, what="healthy again")
        assert backplane.health()["primary"] == f"127.0.0.1:{sentinel.primary_port()}"
    print(f"failover: first publish accepted {took:.2f}s after SIGKILL of the primary")
