"""A small WebSocket test client over the real ``websockets`` library: JSON in, JSON out, with deadlines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Message = dict[str, Any]


class Client:
    """One connection; ``expect`` waits for a message matching a predicate, keeping the others."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[Message] = []

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Client:
        connection = await websockets.connect(url, open_timeout=10, **kwargs)
        return cls(connection)

    async def send(self, message: Message | str) -> None:
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> Message:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        message: Message = json.loads(raw)
        message["_at"] = time.monotonic()
        self.received.append(message)
        return message

    async def expect(self, match: Callable[[Message], bool] | str, timeout: float = 5.0) -> Message:
        """The next message for which ``match`` holds (a str matches ``type``)."""
        predicate = (lambda m: m.get("type") == match) if isinstance(match, str) else match
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching message within {timeout}s; got {self.received[-5:]}")
            message = await self.recv(left)
            if predicate(message):
                return message

    async def collect(
        self, match: Callable[[Message], bool] | str, count: int, timeout: float = 10.0
    ) -> list[Message]:
        found: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            found.append(await self.expect(match, max(deadline - time.monotonic(), 0.001)))
        return found

    async def quiet(self, seconds: float) -> list[Message]:
        """Everything that arrives in the next ``seconds``."""
        got: list[Message] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(await self.recv(left))
            except TimeoutError:
                break
        return got

    async def subscribe(
        self, channel: str, ticker: str | None = None, **extra: Any
    ) -> tuple[Message, list[Message]]:
        """Subscribe and return the acknowledgement and the history replies (one per stream)."""
        request: Message = {"type": "subscribe", "channel": channel, **extra}
        if ticker is not None:
            request["ticker"] = ticker
        await self.send(request)
        ack = await self.expect("subscription")
        histories = [await self.expect("history") for _ in ack["streams"]]
        return ack, histories

    async def close(self) -> None:
        await self.connection.close()


async def connect(server_ws_url: str, user_id: str = "u1", **kwargs: Any) -> Client:
    joiner = "&" if "?" in server_ws_url else "?"
    client = await Client.connect(f"{server_ws_url.rstrip('&')}{joiner}user_id={user_id}", **kwargs)
    ack = await client.expect("connection")
    assert ack["status"] == "connected"
    return client


def source(address: str, forwarded_for: str | None = None) -> dict[str, Any]:
    """``connect`` options of a client on a loopback address of its own (any 127.x.y.z: Linux answers them
    all), sending ``X-Forwarded-For: forwarded_for`` when given (a proxy, or a client forging one)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return {"local_addr": (address, 0), "additional_headers": headers}
