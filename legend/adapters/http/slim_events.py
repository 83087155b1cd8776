"""What uvicorn's WebSocket protocol uses of ``asyncio.Queue`` and ``asyncio.Event``, for a fraction of
their memory: uvicorn gives every connection a queue for its incoming events and an event for write flow
control, five deques (about 3 KB) for a queue that one reader empties and an event that is almost always
set. ``LegendWebSocketProtocol`` uses these two instead."""

from __future__ import annotations

import asyncio
from typing import Any


class _Inbox:
    """The connection's incoming ASGI events: what uvicorn uses of ``asyncio.Queue`` (``put_nowait``,
    ``get``, ``empty``), for its one reader (the application's ``receive``), without four deques."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[Any] | None = None

    def put_nowait(self, item: Any) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._items:
            self._waiter = None
            waiter.set_result(item)
        else:
            self._items.append(item)

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                return await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Flag:
    """What uvicorn uses of ``asyncio.Event`` for write flow control; waiters kept only while any wait."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return bool(await waiter)
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
