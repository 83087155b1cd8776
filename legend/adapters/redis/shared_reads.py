"""One Redis read for many callers who ask for the same key at about the same time.

A restart storm resubscribes thousands of clients to the same few streams within seconds; each resume
read the stream's whole history from Redis on its own, which filled the connection pool and timed out
(the clients were told ``1013 history unavailable``; bench.fanout --storm). Here the callers of one key
share a read, and freshness is kept: a caller never gets a snapshot taken before it asked (the history
and live join of a subscription needs that), so one who asks while a read is under way joins the *next*
read, which starts when the current one ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedReads(Generic[T]):
    """Per key: at most one read under way and one waiting to start, which every new caller joins."""

    def __init__(self) -> None:
        self._under_way: dict[str, asyncio.Future[T]] = {}
        self._next: dict[str, asyncio.Future[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: str, read: Callable[[], Awaitable[T]]) -> T:
        """The result of a read of ``key`` that started after this call (``read`` makes one)."""
        batch = self._next.get(key)
        if batch is None:
            batch = self._next[key] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._run(key, batch, read))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(batch)  # a caller cancelled leaves the read to the others

    async def _run(self, key: str, batch: asyncio.Future[T], read: Callable[[], Awaitable[T]]) -> None:
        previous = self._under_way.get(key)
        if previous is not None:
            await asyncio.wait({previous})  # its snapshot may predate this batch's callers
        del self._next[key]  # from now on, a new caller waits for the read after this one
        self._under_way[key] = batch
        try:
            batch.set_result(await read())
        except asyncio.CancelledError:  # the service stopping: its callers with it
            batch.cancel()
            raise
        except Exception as exc:  # every caller gets it
            batch.set_exception(exc)
            batch.exception()  # retrieved: no warning when every caller has gone
        finally:
            if self._under_way.get(key) is batch:
                del self._under_way[key]
