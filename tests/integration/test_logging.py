"""One log for everything: credentials redacted from the decoded query of every line, JSON lines with the
connection id, and hostile input logged at most once a second — over a real server's real log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import closing

import httpx
import jwt
import pytest
import websockets

from tests.integration.conftest import QUIET
from tests.support.rawsocket import SilentPeer
from tests.support.server import LegendServer, merge

SECRET = "s" * 40


def serve(**sections: dict[str, object]) -> LegendServer:
    return LegendServer(merge(QUIET, {"server": {"log_level": "info"}, **sections})).start()


@pytest.fixture(scope="module")
def jwt_server() -> Iterator[LegendServer]:
    with closing(serve(security={"auth": "jwt", "jwt_secret": SECRET})) as server:
        yield server


def wait_for(server: LegendServer, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (logs := server.logs()):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{logs[-3000:]}"
        time.sleep(0.05)
    return logs


async def test_tokens_are_redacted_however_the_query_spells_them(jwt_server: LegendServer) -> None:
    token = jwt.encode({"sub": "alice", "exp": time.time() + 600}, SECRET, algorithm="HS256")
    for query in (f"token={token}", f"%74oken={token}", f"tok%65n={token}", f"TOKEN={token}&x=1"):
        response = httpx.get(f"{jwt_server.url}/health?{query}", timeout=10)
        assert response.status_code == 200
    async with websockets.connect(f"{jwt_server.ws_url}?%74oken={token}") as ws:  # decoded: a token
        assert '"connected"' in await asyncio.wait_for(ws.recv(), 5)
    logs = wait_for(jwt_server, "WebSocket /api/ws?")
    logs = wait_for(jwt_server, "GET /health?TOKEN=")
    assert token not in logs and token.split(".")[2] not in logs
    assert logs.count("[redacted]") >= 5
    assert "Logging error" not in logs and "Traceback" not in logs


def test_any_query_with_a_token_keeps_its_access_log_line() -> None:
    server = serve()
    try:
        assert httpx.get(f"{server.url}/health?token=abc", timeout=10).status_code == 200
        logs = wait_for(server, "GET /health?token=[redacted]")
        assert "Logging error" not in logs and "ValueError" not in logs
    finally:
        server.close()


async def test_json_lines_carry_the_connection_id_and_hostile_input_is_logged_once_a_second() -> None:
    server = serve(
        server={"log_level": "info", "log_format": "json"},
        realtime={**QUIET["realtime"], "connect_rate_per_ip": 0, "inbound_rate": 1, "inbound_burst": 1},
    )
    try:
        for _ in range(60):  # invalid UTF-8 in a text frame, from many connections, as fast as it goes
            peer = SilentPeer(server.port, "/api/ws?user_id=garbage")
            peer.sock.sendall(b"\x81\x82\x00\x00\x00\x00\xc3\x28")  # masked text frame, bad UTF-8
            peer.close()
        async with websockets.connect(f"{server.ws_url}?user_id=flooder") as ws:
            await ws.recv()
            for _ in range(10):  # over the inbound rate: errors, then a close (1008)
                await ws.send('{"type":"ping"}')
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        logs = wait_for(server, "(1008)")
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert (
            len(lines) == len([line for line in logs.splitlines() if line.strip()]) - 1
        )  # all but the banner
        assert {"time", "level", "logger", "message"} <= set(lines[0])
        closing = [line for line in lines if "(1008)" in line["message"]]
        assert closing and closing[0]["connection_id"].startswith("flooder_")
        bad = [line for line in lines if "not valid UTF-8" in line["message"]]
        assert 1 <= len(bad) <= 3, bad  # 60 bad frames in a second or two
        assert not any("exception" in line for line in bad)
    finally:
        server.close()
