"""A real ``legend serve`` verifying the tokens of an OpenID Connect provider (``security.jwks_url``),
played by a key set served on 127.0.0.1 (tests/support/jwks_server.py) that rotates its keys while the
server runs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.support.jwks_server import JwksServer
from tests.support.server import LegendServer
from tests.support.wsclient import Client

ISSUER = "https://tenant.idp.example/"


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.publish("2024-key")
        yield server


@pytest.fixture(scope="module")
def oidc_server(idp: JwksServer) -> Iterator[LegendServer]:
    security = {
        "auth": "jwt",
        "jwks_url": idp.url,
        "jwt_issuer": ISSUER,
        "jwt_audience": "legend-api",
        "jwks_refetch_seconds": 0.5,
    }
    with LegendServer({"security": security}) as srv:
        yield srv


def claims(sub: str) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 300, "iss": ISSUER, "aud": "legend-api"}


def me(server: LegendServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


async def refused(server: LegendServer, token: str) -> str:
    """The reason of the 4401 the WebSocket closes with."""
    client = await Client.connect(server.ws_url, subprotocols=["bearer", token])  # type: ignore[list-item]
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv(timeout=10)
    assert client.connection.close_code == 4401
    return client.connection.close_reason or ""


async def test_provider_tokens_open_the_stream_and_the_api(
    oidc_server: LegendServer, idp: JwksServer
) -> None:
    token = idp.sign(claims("auth0|64f1c2e5a9b8"), "2024-key")  # Auth0 names users provider|id
    client = await Client.connect(oidc_server.ws_url, subprotocols=["bearer", token])  # type: ignore[list-item]
    assert (await client.expect("connection"))["user_id"] == "auth0|64f1c2e5a9b8"
    await client.close()
    answer = me(oidc_server, token)
    assert answer.status_code == 200 and answer.json()["user_id"] == "auth0|64f1c2e5a9b8"


async def test_an_unknown_key_is_refused_and_a_rotated_key_accepted_without_restart(
    oidc_server: LegendServer, idp: JwksServer
) -> None:
    stranger = idp.sign(claims("mallory"), "2024-key", header_kid="not-a-key")
    assert "unknown signing key" in await refused(oidc_server, stranger)
    answer = me(oidc_server, stranger)
    assert answer.status_code == 401 and "unknown signing key" in answer.json()["detail"]
    # a kid of 4-byte characters still gives a close reason that fits a close frame (123 bytes)
    keys = idp.sign(claims("mallory"), "2024-key", header_kid="\U0001f511" * 60)
    assert "unknown signing key '\\U0001f511" in await refused(oidc_server, keys)

    idp.publish("2025-key")  # the provider rotates
    rotated = idp.sign(claims("carol"), "2025-key")
    deadline = time.monotonic() + 30
    while (answer := me(oidc_server, rotated)).status_code != 200:
        assert answer.status_code == 401 and time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    assert answer.json()["user_id"] == "carol"
    client = await Client.connect(oidc_server.ws_url, subprotocols=["bearer", rotated])  # type: ignore[list-item]
    assert (await client.expect("connection"))["user_id"] == "carol"
    await client.close()
    # the old key is still published: its tokens still work
    assert me(oidc_server, idp.sign(claims("amy"), "2024-key")).status_code == 200
    metrics = httpx.get(f"{oidc_server.url}/metrics", headers=oidc_server.admin, timeout=10).text
    fetches = re.search(r"^legend_jwks_fetches_total (\S+)$", metrics, re.M)
    assert fetches and float(fetches.group(1)) == idp.fetches


async def test_algorithm_confusion_is_refused(oidc_server: LegendServer, idp: JwksServer) -> None:
    public = idp.public_jwk("2024-key")
    confused = jwt.encode(claims("mallory"), public["n"], algorithm="HS256", headers={"kid": "2024-key"})
    assert "not accepted" in await refused(oidc_server, confused)
    assert me(oidc_server, confused).status_code == 401
