"""Per-message deflate over a real uvicorn server (legend/adapters/http/websocket_protocol.py): negotiated
without server context takeover, each message compressed once and the same bytes sent to every client
that accepted the extension, plain frames to the others, small messages uncompressed, and no offer, odd
or malformed, ever failing the handshake. Frames are read as bytes (tests/support/rawframes.py) and by
the ``websockets`` client, which decodes them as a browser does."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate

from legend.bootstrap import Services, bootstrap
from legend.domain.inputs import PatternInput, PriceInput
from legend.settings import DatabaseSettings, ServerSettings, Settings
from tests.support.inprocess import serving
from tests.support.rawframes import BROWSER_OFFER, RawClient
from tests.support.wsclient import connect

SUBSCRIBE = {"type": "subscribe", "channel": "ticker", "ticker": "AAPL"}
PATTERN = PatternInput(
    ticker="AAPL", pattern_type="VCP", score=8.5, entry_price=231.0, stop_price=224.0, target_price=250.0
)


class Served(msgspec.Struct):
    services: Services
    url: str  # ws://127.0.0.1:PORT/api/ws


@asynccontextmanager
async def serve(tmp_path: Path, **server: object) -> AsyncIterator[Served]:
    """An in-process server with these ``server`` settings (the shipped ones otherwise)."""
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"),
        server=ServerSettings(**server),  # type: ignore[arg-type]
    )
    services = bootstrap(settings, run_quote_poller=False)
    async with serving(services) as url:
        yield Served(services, url)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A server with the shipped settings."""
    async with serve(tmp_path) as one:
        yield one


async def subscribed(served: Served, user: str, offers: tuple[str, ...] = ()) -> RawClient:
    """A raw client offering ``offers``, subscribed to AAPL's prices (its history read)."""
    client = await RawClient.connect(f"{served.url}?user_id={user}", offers)
    assert client.status == 101, client.head
    await client.frame_of_type("connection")
    await client.send(SUBSCRIBE)
    await client.frame_of_type("history")
    return client


async def test_the_server_offers_deflate_without_context_takeover_and_a_plain_client_gets_plain_frames(
    served: Served,
) -> None:
    deflating = await subscribed(served, "a", (BROWSER_OFFER,))
    plain = await subscribed(served, "b")
    assert deflating.extensions == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12; client_max_window_bits=12"
    )
    assert plain.extensions == ""
    await served.services.publisher.price(PriceInput(ticker="AAPL", price=231.5))
    compressed = await deflating.frame_of_type("price_update")
    uncompressed = await plain.frame_of_type("price_update")
    assert compressed.compressed and not uncompressed.compressed
    assert compressed.first == 0xC1 and uncompressed.first == 0x81  # FIN, (RSV1,) text
    assert len(compressed.payload) < len(uncompressed.payload)
    assert compressed.text() == uncompressed.payload.decode()  # the very text a plain client gets
    await deflating.close()
    await plain.close()


async def test_every_deflate_client_gets_the_same_compressed_bytes_of_a_message(served: Served) -> None:
    clients = [await subscribed(served, f"u{i}", (BROWSER_OFFER,)) for i in range(4)]
    clients.append(await subscribed(served, "explicit", ("permessage-deflate; server_no_context_takeover",)))
    publisher = served.services.publisher
    for price in (231.5, 232.25, 229.75):  # each message compressed alone: no frame depends on the last
        await publisher.price(PriceInput(ticker="AAPL", price=price, volume=1_000_000))
        frames = [await client.frame_of_type("price_update") for client in clients]
        assert all(frame.compressed for frame in frames)
        assert len({frame.first.to_bytes(1, "big") + frame.payload for frame in frames}) == 1
        assert frames[0].json()["price"] == price
    for client in clients:
        await client.close()


async def test_a_websockets_client_allowing_context_takeover_decodes_every_message(served: Served) -> None:
    """The library's default offer lets the server keep context; the server says it does not, and the
    client, which decodes as the response says, reads every message of a stream, in order."""
    client = await connect(served.url, user_id="lib")  # compression="deflate": the library's default offer
    request, response = client.connection.request, client.connection.response
    assert request is not None and response is not None
    assert request.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits"
    assert "server_no_context_takeover" in response.headers["Sec-WebSocket-Extensions"]
    (extension,) = client.connection.protocol.extensions
    assert isinstance(extension, PerMessageDeflate)
    assert extension.remote_no_context_takeover and extension.local_no_context_takeover
    await client.subscribe("patterns")  # a compressed client frame, inflated by the server's library
    texts = [f"VCP number {i} on AAPL" for i in range(8)]  # must-deliver: every one arrives, in order
    for text in texts:
        await served.services.publisher.pattern(msgspec.structs.replace(PATTERN, message=text))
    received = await client.collect("pattern_alert", len(texts))
    assert [m["message"] for m in received] == texts
    await client.connection.close()


@pytest.mark.parametrize(
    "factory",
    [
        ClientPerMessageDeflateFactory(client_no_context_takeover=True),
        ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True),
        ClientPerMessageDeflateFactory(server_max_window_bits=15, client_max_window_bits=9),
        # a window smaller than the shared frames': compressed by the connection's own extension
        ClientPerMessageDeflateFactory(server_no_context_takeover=True, server_max_window_bits=10),
    ],
    ids=["client_no_context", "both_no_context", "larger_server_window", "smaller_server_window"],
)
async def test_explicit_offers_are_honoured_and_decode(
    served: Served, factory: ClientPerMessageDeflateFactory
) -> None:
    async with websockets.connect(f"{served.url}?user_id=x", extensions=[factory], compression=None) as ws:
        (extension,) = ws.protocol.extensions
        assert isinstance(extension, PerMessageDeflate)
        assert extension.remote_no_context_takeover  # the server's: never context between messages
        if factory.server_max_window_bits == 10:
            assert extension.remote_max_window_bits == 10
        await ws.send(msgspec.json.encode(SUBSCRIBE).decode())
        texts = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]  # connection, subscription, history
        assert [msgspec.json.decode(t)["type"] for t in texts] == ["connection", "subscription", "history"]
        for price in (231.5, 232.5):
            await served.services.publisher.price(PriceInput(ticker="AAPL", price=price))
            message = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
            assert (message["type"], message["price"]) == ("price_update", price)


async def test_a_client_asking_a_smaller_server_window_gets_its_own_compressed_frames(served: Served) -> None:
    shared = await subscribed(served, "s", ("permessage-deflate",))
    own = await subscribed(served, "o", ("permessage-deflate; server_max_window_bits=9",))
    assert "server_max_window_bits=9" in own.extensions
    await served.services.publisher.price(PriceInput(ticker="AAPL", price=231.5))
    one, other = await shared.frame_of_type("price_update"), await own.frame_of_type("price_update")
    assert one.compressed and other.compressed
    assert one.text() == other.text()
    await shared.close()
    await own.close()


async def test_messages_under_the_floor_go_uncompressed(served: Served) -> None:
    floor = ServerSettings().ws_deflate_min_bytes
    client = await RawClient.connect(f"{served.url}?user_id=p", ("permessage-deflate",))
    assert client.extensions.startswith("permessage-deflate")
    await client.frame_of_type("connection")
    await client.send({"type": "subscribe", "channel": "ticker", "ticker": "MSFT"})
    history = await client.frame_of_type("history")  # no prices yet: about 100 bytes
    assert len(history.payload) < floor and not history.compressed and history.first == 0x81
    alone = zlib.compressobj(-1, zlib.DEFLATED, -12, 5)
    assert len(alone.compress(history.payload) + alone.flush(zlib.Z_SYNC_FLUSH)) - 4 < len(history.payload)
    await client.send({"type": "ping"})
    assert not (await client.frame_of_type("pong")).compressed  # 54 bytes, which deflate would not shrink
    await served.services.publisher.price(PriceInput(ticker="MSFT", price=431.5))
    price = await client.frame_of_type("price_update")
    assert price.compressed and price.json()["price"] == 431.5  # over the floor
    await client.close()


async def test_the_floor_is_a_setting(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_deflate_min_bytes=100_000) as served:
        client = await subscribed(served, "f", ("permessage-deflate",))
        await served.services.publisher.price(PriceInput(ticker="AAPL", price=231.5))
        frame = await client.frame_of_type("price_update")
        assert not frame.compressed and frame.json()["price"] == 231.5
        await client.close()


async def test_deflate_switched_off_is_never_negotiated(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_per_message_deflate=False) as served:
        client = await subscribed(served, "off", (BROWSER_OFFER,))
        assert client.extensions == ""
        await served.services.publisher.price(PriceInput(ticker="AAPL", price=231.5))
        assert not (await client.frame_of_type("price_update")).compressed
        await client.close()


@pytest.mark.parametrize(
    ("offers", "accepted"),
    [
        (("permessage-deflate; server_max_window_bits=8",), False),  # zlib cannot: declined
        (("permessage-deflate; foo=bar",), False),  # unknown parameter
        (("permessage-deflate; client_max_window_bits=abc",), False),  # invalid value
        (("permessage-deflate; server_no_context_takeover=1",), False),  # a value where none is allowed
        (("permessage-deflate; client_max_window_bits; client_max_window_bits",), False),  # duplicated
        (("x-webkit-deflate-frame",), False),  # another extension
        (('permessage-deflate; x="unterminated',), False),  # unparseable
        ((";;; ,,",), False),  # unparseable
        (("permessage-deflate", "x=="), False),  # one of two headers unparseable
        (("permessage-deflate; server_max_window_bits=8, permessage-deflate",), True),  # the second taken
        (("permessage-deflate, permessage-deflate; client_max_window_bits",), True),  # the first taken
        (("x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=15"), True),
    ],
)
async def test_odd_offers_never_fail_the_handshake(
    served: Served, offers: tuple[str, ...], accepted: bool
) -> None:
    client = await RawClient.connect(f"{served.url}?user_id=odd", offers)
    assert client.status == 101, client.head
    assert client.extensions.startswith("permessage-deflate") == accepted, client.extensions
    assert client.extensions.count("permessage-deflate") <= 1
    assert (await client.frame_of_type("connection")).compressed == accepted  # 160-odd bytes: over the floor
    await client.send(SUBSCRIBE)
    await client.frame_of_type("history")
    await served.services.publisher.price(PriceInput(ticker="AAPL", price=231.5))
    frame = await client.frame_of_type("price_update")
    assert frame.compressed == accepted and frame.json()["price"] == 231.5
    await client.close()
