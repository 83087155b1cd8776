"""Getting in to a JWT server: ``legend token create`` against a real server's settings file, the public
``/api/auth/config`` and ``/api/auth/me``, and the refusals an administrator meets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.server import LegendServer, run_legend, to_toml
from tests.support.wsclient import Client

SECRET = "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken"
SECURITY = {
    "auth": "jwt",
    "jwt_secret": SECRET,
    "jwt_audience": "legend-dashboard",
    "jwt_issuer": "legend-admin",
    "jwt_leeway_seconds": 0,
    "login_url": "https://login.example.com/legend",
}


@pytest.fixture(scope="module")
def jwt_server() -> Iterator[LegendServer]:
    with LegendServer({"security": SECURITY, "realtime": {"cleanup_interval": 0.2}}) as srv:
        yield srv


def create(server: LegendServer, *extra: str) -> str:
    result = run_legend("token", "create", "--config", str(server.config_path), *extra)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token and token.count(".") == 2  # stdout is the token alone: TOKEN=$(legend ...)
    return token


async def test_a_created_token_opens_the_stream_and_the_rest_api(jwt_server: LegendServer) -> None:
    result = run_legend(
        "token", "create", "--config", str(jwt_server.config_path), "--user", "amy", "--ttl", "120"
    )
    assert result.returncode == 0, result.stderr
    assert "HS256 token for amy, valid until" in result.stderr
    token = result.stdout.strip()
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="legend-dashboard", issuer="legend-admin"
    )
    assert claims["sub"] == "amy" and claims["exp"] - claims["iat"] == 120

    client = await Client.connect(jwt_server.ws_url, subprotocols=["bearer", token])  # type: ignore[list-item]
    assert (await client.expect("connection"))["user_id"] == "amy"
    await client.close()
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{jwt_server.url}/api/watchlist", headers=bearer, timeout=5).status_code == 200
    me = httpx.get(f"{jwt_server.url}/api/auth/me", headers=bearer, timeout=5)
    assert me.status_code == 200
    assert me.json()["user_id"] == "amy" and me.json()["mode"] == "jwt"
    expires = datetime.fromisoformat(me.json()["expires_at"].replace("Z", "+00:00"))
    assert expires == datetime.fromtimestamp(claims["exp"], UTC)  # leeway 0 here


def test_auth_config_is_public_and_documented(jwt_server: LegendServer, server: LegendServer) -> None:
    assert httpx.get(f"{jwt_server.url}/api/auth/config", timeout=5).json() == {
        "mode": "jwt",
        "login_url": "https://login.example.com/legend",
    }
    assert httpx.get(f"{server.url}/api/auth/config", timeout=5).json() == {"mode": "dev", "login_url": None}
    dev_me = httpx.get(f"{server.url}/api/auth/me", headers={"X-User-Id": "dev-amy"}, timeout=5).json()
    assert dev_me == {"user_id": "dev-amy", "mode": "dev", "expires_at": None}
    paths = httpx.get(f"{jwt_server.url}/docs/openapi.json", timeout=5).json()["paths"]
    assert paths["/api/auth/config"]["get"]["tags"] == ["auth"]
    assert paths["/api/auth/me"]["get"]["tags"] == ["auth"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "missing token"),
        ("not.a.jwt", "invalid token"),
        (jwt.encode({"sub": "amy", "exp": 2**31}, "x" * 32, algorithm="HS256"), "invalid token"),
    ],
)
def test_auth_me_says_why_a_token_is_refused(jwt_server: LegendServer, token: str, reason: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    refused = httpx.get(f"{jwt_server.url}/api/auth/me", headers=headers, timeout=5)
    assert refused.status_code == 401
    assert reason in refused.json()["detail"]


async def test_when_the_token_expires_the_stream_closes_4401_and_rest_answers_401(
    jwt_server: LegendServer,
) -> None:
    token = create(jwt_server, "--user", "brief", "--ttl", "2")
    client = await Client.connect(f"{jwt_server.ws_url}?token={token}")
    assert (await client.expect("connection"))["user_id"] == "brief"
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await client.recv(timeout=8)
    assert client.connection.close_code == 4401 and client.connection.close_reason == "token expired"
    late = httpx.get(f"{jwt_server.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert late.status_code == 401 and "token expired" in late.json()["detail"]


def test_rs256_needs_the_matching_private_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "jwt.key"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = tmp_path / "jwt.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = tmp_path / "legend.toml"
    config.write_text(to_toml({"security": {"auth": "jwt", "jwt_public_key": str(public)}}))
    base = ("token", "create", "--config", str(config), "--user", "rsa-user")

    made = run_legend(*base, "--key", str(private))
    assert made.returncode == 0, made.stderr
    assert jwt.decode(made.stdout.strip(), public.read_text(), algorithms=["RS256"])["sub"] == "rsa-user"

    missing = run_legend(*base)
    assert missing.returncode == 2 and "--key FILE" in missing.stderr and missing.stdout == ""
    other = tmp_path / "other.key"
    other.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    wrong = run_legend(*base, "--key", str(other))
    assert wrong.returncode == 2 and "does not verify" in wrong.stderr and wrong.stdout == ""


def test_refused_in_dev_mode_and_for_bad_arguments(tmp_path: Path) -> None:
    dev = tmp_path / "dev.toml"
    dev.write_text(to_toml({"security": {"admin_token": "x"}}))
    refused = run_legend("token", "create", "--config", str(dev), "--user", "amy")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "security.auth is 'dev'" in refused.stderr and "security.auth = 'jwt'" in refused.stderr

    jwt_config = tmp_path / "jwt.toml"
    jwt_config.write_text(to_toml({"security": {"auth": "jwt", "jwt_secret": SECRET}}))
    for args, message in (
        (("--user", "not valid!"), "invalid user id"),
        (("--user", "amy", "--ttl", "0"), "ttl"),
        (("--user", "amy", "--key", "some.pem"), "--key is for RS256"),
    ):
        result = run_legend("token", "create", "--config", str(jwt_config), *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    short = tmp_path / "short.toml"
    short.write_text(to_toml({"security": {"auth": "jwt", "jwt_secret": "short"}}))
    result = run_legend("token", "create", "--config", str(short), "--user", "amy")
    assert result.returncode == 2 and "at least 32 characters" in result.stderr


def test_a_login_url_must_be_a_web_address_or_a_path(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(
        to_toml({"security": {"auth": "jwt", "jwt_secret": SECRET, "login_url": "javascript:alert(1)"}})
    )
    result = run_legend("serve", "--config", str(config), "--port", "1")
    assert result.returncode == 2 and "login_url" in result.stderr and "$.security" in result.stderr
