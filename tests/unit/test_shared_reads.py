"""``SharedReads``: callers of one key share a Redis read, and none gets a snapshot older than its call
(legend/adapters/redis/shared_reads.py; a restart storm's resumes read each stream's history once)."""

from __future__ import annotations

import asyncio

import pytest

from legend.adapters.redis.shared_reads import SharedReads


class Store:
    """A value that changes, read slowly: each read returns the value as of its start."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.gate = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        seen = self.value
        await self.gate.wait()
        return seen


async def test_callers_at_the_same_time_share_one_read() -> None:
    reads, store = SharedReads[int](), Store()
    callers = [asyncio.create_task(reads.read("s", store.read)) for _ in range(50)]
    await asyncio.sleep(0.01)
    store.gate.set()
    assert await asyncio.gather(*callers) == [0] * 50 and store.reads == 1
    assert not reads._under_way and not reads._next  # nothing kept per key once done


async def test_a_caller_during_a_read_gets_the_next_read_not_an_older_snapshot() -> None:
    reads, store = SharedReads[int](), Store()
    early = asyncio.create_task(reads.read("s", store.read))
    await asyncio.sleep(0.01)  # the read has started, with value 0
    store.value = 1  # published after the first read began
    late = [asyncio.create_task(reads.read("s", store.read)) for _ in range(10)]
    other = asyncio.create_task(reads.read("t", store.read))  # another key is not held back
    await asyncio.sleep(0.01)
    assert store.reads == 2  # the first, and the other key's; the late ones wait for the first to end
    store.gate.set()
    assert await early == 0 and await other == 1
    assert await asyncio.gather(*late) == [1] * 10 and store.reads == 3


async def test_a_failed_read_fails_every_caller_and_the_next_reads_again() -> None:
    reads, calls = SharedReads[int](), 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("redis is away")

    results = await asyncio.gather(*(reads.read("s", broken) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and calls == 1

    async def works() -> int:
        return 7

    assert await reads.read("s", works) == 7


async def test_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    reads, store = SharedReads[int](), Store()
    leaving = asyncio.create_task(reads.read("s", store.read))
    staying = asyncio.create_task(reads.read("s", store.read))
    await asyncio.sleep(0.01)
    leaving.cancel()
    store.gate.set()
    assert await staying == 0
    with pytest.raises(asyncio.CancelledError):
        await leaving
