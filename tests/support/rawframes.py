"""A WebSocket client on an asyncio stream that sees the frames as bytes: the RSV1 bit of per-message
deflate, and whether two connections were sent the very same bytes. It offers the extensions it is told
to, verbatim (odd offers included), and never compresses what it sends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import zlib
from typing import Any

BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # what Chrome and Firefox send


class RawFrame:
    """One server frame as it came: its first byte and its payload, unmasked."""

    def __init__(self, first: int, payload: bytes) -> None:
        self.first = first
        self.payload = payload

    @property
    def compressed(self) -> bool:
        return bool(self.first & 0x40)  # RSV1: a per-message deflate message

    @property
    def opcode(self) -> int:
        return self.first & 0x0F

    def text(self) -> str:
        """The message's text: inflated alone when compressed, as a client of a server without context
        takeover may (a fresh decoder for every message, 15-bit window: any server window fits)."""
        if not self.compressed:
            return self.payload.decode()
        return zlib.decompressobj(-15).decompress(self.payload + b"\x00\x00\xff\xff").decode()

    def json(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.text())
        return message


class RawClient:
    """One connection after its handshake; ``extensions`` is the response's Sec-WebSocket-Extensions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head
        self.status = int(head.split(" ", 2)[1])
        self.extensions = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                self.extensions = value.strip()

    @classmethod
    async def connect(cls, url: str, offers: tuple[str, ...] = (BROWSER_OFFER,)) -> RawClient:
        """Open ``url`` (``ws://host:port/path?query``) with one Sec-WebSocket-Extensions header per
        offer (none: no extension offered)."""
        rest = url.removeprefix("ws://")
        address, _, path = rest.partition("/")
        host, _, port = address.partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /{path} HTTP/1.1",
            f"Host: {address}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"Sec-WebSocket-Extensions: {offer}" for offer in offers),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return cls(reader, writer, head.decode("latin-1"))

    async def frame(self, timeout: float = 5.0) -> RawFrame:
        """The next frame the server sends."""
        async with asyncio.timeout(timeout):
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            assert not second & 0x80, "a server frame is never masked"
            return RawFrame(first, await self.reader.readexactly(size))

    async def frame_of_type(self, kind: str, timeout: float = 5.0) -> RawFrame:
        """The next text frame whose message has ``type`` ``kind`` (the others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frame()
                if frame.opcode == 0x1 and frame.json().get("type") == kind:
                    return frame

    async def send(self, message: dict[str, Any] | str, opcode: int = 0x1) -> None:
        """One masked, uncompressed frame (RSV1 clear: allowed with per-message deflate)."""
        payload = (message if isinstance(message, str) else json.dumps(message)).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        size = len(payload)
        header = (
            struct.pack("!BB", 0x80 | opcode, 0x80 | size)
            if size < 126
            else struct.pack("!BBH", 0x80 | opcode, 0xFE, size)
        )
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
