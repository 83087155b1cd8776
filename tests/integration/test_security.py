"""Identity and admission: JWTs, development identity, origins, and refusing unsafe binds."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.server import LegendServer, run_legend, to_toml
from tests.support.wsclient import Client

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-42"


def token(
    sub: str = "trader7", *, key: str | bytes = SECRET, algorithm: str = "HS256", expires_in: int = 300
) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + expires_in}, key, algorithm=algorithm)


@pytest.fixture(scope="module")
def jwt_server() -> Iterator[LegendServer]:
    with LegendServer(
        {
            "security": {"auth": "jwt", "jwt_secret": SECRET, "jwt_leeway_seconds": 0},
            "realtime": {"cleanup_interval": 0.2},
            "server": {"log_level": "info"},
        }
    ) as srv:
        yield srv


async def test_jwt_in_query_sets_the_user(jwt_server: LegendServer) -> None:
    client = await Client.connect(f"{jwt_server.ws_url}?token={token()}&user_id=mallory")
    ack = await client.expect("connection")
    assert ack["user_id"] == "trader7" and ack["connection_id"].startswith("trader7_")
    await client.close()


async def test_jwt_in_subprotocol_is_accepted(jwt_server: LegendServer) -> None:
    client = await Client.connect(jwt_server.ws_url, subprotocols=["bearer", token("ann")])  # type: ignore[list-item]
    assert client.connection.subprotocol == "bearer"
    assert (await client.expect("connection"))["user_id"] == "ann"
    await client.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(expires_in=-60), "token expired"),
        (lambda: token(key="another-secret-another-secret-00"), "invalid token"),
        (lambda: "not.a.jwt", "invalid token"),
        (lambda: jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"), "invalid token"),  # no exp
        (lambda: jwt.encode({"sub": "x", "exp": 2**31}, "", algorithm="none"), "invalid token"),
        (lambda: "", "missing token"),
    ],
)
async def test_bad_tokens_are_refused_with_4401(jwt_server: LegendServer, make: object, reason: str) -> None:
    value = make()  # type: ignore[operator]
    client = await Client.connect(f"{jwt_server.ws_url}?token={value}")
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv(timeout=5)
    assert client.connection.close_code == 4401
    assert reason in (client.connection.close_reason or "")


async def test_rs256_public_key(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_file = tmp_path / "jwt.pub"
    key_file.write_bytes(public_pem)
    srv = LegendServer({"security": {"auth": "jwt", "jwt_public_key": str(key_file)}}).start()
    try:
        good = token("rsa-user", key=private, algorithm="RS256")  # type: ignore[arg-type]
        client = await Client.connect(f"{srv.ws_url}?token={good}")
        assert (await client.expect("connection"))["user_id"] == "rsa-user"
        await client.close()
        hs = token("rsa-user")  # an HS256 token must not pass as RS256 (algorithm confusion)
        refused = await Client.connect(f"{srv.ws_url}?token={hs}")
        with pytest.raises(websockets.ConnectionClosed):
            await refused.recv(timeout=5)
        assert refused.connection.close_code == 4401
    finally:
        srv.close()


async def test_dev_mode_rejects_an_invalid_user_id(server: LegendServer) -> None:
    client = await Client.connect(f"{server.ws_url}?user_id=bad%20id%3Cscript%3E")
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv(timeout=5)
    assert client.connection.close_code == 4401


async def test_foreign_origin_is_refused_same_origin_allowed(server: LegendServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{server.ws_url}?user_id=u", origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    same = await websockets.connect(
        f"{server.ws_url}?user_id=u",
        origin=f"http://127.0.0.1:{server.port}",  # type: ignore[arg-type]
    )
    await same.close()


async def test_origin_allow_list_and_the_own_host() -> None:
    """With allowed_origins set (the compose file sets it), the listed origin and the server's own host
    (the dashboard it serves) are accepted; another origin, or the own host on another port, is not."""
    srv = LegendServer({"security": {"allowed_origins": ["https://app.example.com"]}}).start()
    try:
        for origin in ("https://app.example.com", f"http://127.0.0.1:{srv.port}"):
            ok = await websockets.connect(f"{srv.ws_url}?user_id=u", origin=origin)  # type: ignore[arg-type]
            await ok.close()
        for origin in ("http://evil.example", f"http://127.0.0.1:{srv.port + 1}"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"{srv.ws_url}?user_id=u", origin=origin)  # type: ignore[arg-type]
            assert refused.value.response.status_code == 403
    finally:
        srv.close()


def test_non_loopback_bind_without_jwt_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(to_toml({"security": {"admin_token": "x"}}))
    result = run_legend("serve", "--host", "0.0.0.0", "--port", "1", "--config", str(config))
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr and "security.auth = 'jwt'" in result.stderr


async def test_a_connection_is_closed_when_its_token_expires(jwt_server: LegendServer) -> None:
    client = await Client.connect(f"{jwt_server.ws_url}?token={token('brief', expires_in=2)}")
    assert (await client.expect("connection"))["user_id"] == "brief"
    await client.subscribe("alerts")
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await client.recv(timeout=6)
    assert client.connection.close_code == 4401 and client.connection.close_reason == "token expired"


async def test_tokens_in_the_query_string_stay_out_of_the_logs(jwt_server: LegendServer) -> None:
    secret_token = token("logged")
    client = await Client.connect(f"{jwt_server.ws_url}?token={secret_token}")
    await client.expect("connection")
    await client.close()
    logs = jwt_server.logs()
    assert "token=[redacted]" in logs and secret_token not in logs


async def test_dev_mode_refuses_foreign_host_names(server: LegendServer) -> None:
    rebound = httpx.get(f"{server.url}/api/watchlist", headers={"Host": f"attacker.example:{server.port}"})
    assert rebound.status_code == 400 and "loopback" in rebound.json()["detail"]
    assert httpx.get(f"{server.url}/health", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    for host, status in (
        (f"attacker.example:{server.port}", b" 403 "),
        (f"localhost:{server.port}", b" 101 "),
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                f"GET /api/ws?user_id=u HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                f"Origin: http://{host}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert status in sock.recv(1024).split(b"\r\n")[0]
