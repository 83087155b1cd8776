"""Keys from an identity provider (``security.jwks_url``), against a real HTTP server on 127.0.0.1 serving
a key set the test controls (tests/support/jwks_server.py): rotation, unknown key ids, refetch limits, the
algorithms accepted, a provider that fails or hangs, and the settings' checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from legend.adapters.auth import Authenticator, AuthError, TokenError
from legend.settings import SecuritySettings
from tests.support.jwks_server import JwksServer


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.publish("k1")
        yield server


def auth(idp: JwksServer, **extra: Any) -> Authenticator:
    settings: dict[str, Any] = {"jwks_refetch_seconds": 60.0, "jwks_timeout_seconds": 2.0, **extra}
    return Authenticator(
        SecuritySettings(
            auth="jwt", jwks_url=idp.url, jwt_issuer="https://idp.example/", jwt_audience="legend", **settings
        )
    )


def claims(sub: str = "amy", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 300, "iss": "https://idp.example/", "aud": "legend", **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None = None) -> str:
    """A token built by hand: any header, HMAC-signed with ``secret`` or unsigned."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


async def test_rs256_and_es256_tokens_from_the_key_set(idp: JwksServer) -> None:
    idp.publish("ec1", "ES256")
    authenticator = auth(idp)
    assert (await authenticator.verify_token(idp.sign(claims("amy"), "k1"))).user_id == "amy"
    assert (await authenticator.verify_token(idp.sign(claims("bob"), "ec1"))).user_id == "bob"
    for _ in range(20):  # found in the cached set, without fetching again
        await authenticator.verify_token(idp.sign(claims(), "k1"))
    assert idp.fetches == 1
    with pytest.raises(AuthError, match="Audience"):
        await authenticator.verify_token(idp.sign(claims(aud="someone-else"), "k1"))
    with pytest.raises(AuthError, match="Invalid issuer"):
        await authenticator.verify_token(idp.sign(claims(iss="https://evil.example/"), "k1"))


async def test_a_key_published_after_start_is_fetched_once_the_refetch_interval_allows(
    idp: JwksServer,
) -> None:
    authenticator = auth(idp, jwks_refetch_seconds=0.5)
    assert (await authenticator.verify_token(idp.sign(claims(), "k1"))).user_id == "amy"
    idp.publish("k2")  # the provider rotates its keys
    rotated = idp.sign(claims("carol"), "k2")
    deadline = time.monotonic() + 20
    while True:
        try:
            identity = await authenticator.verify_token(rotated)
            break
        except AuthError as exc:
            assert "unknown signing key 'k2'" in exc.reason
            assert time.monotonic() < deadline, "the new key was never fetched"
            await asyncio.sleep(0.1)
    assert identity.user_id == "carol"
    assert 2 <= idp.fetches <= 3  # the start, then one refetch (two if the first landed in the cooldown)


async def test_unknown_key_ids_do_not_make_the_server_hammer_the_provider(idp: JwksServer) -> None:
    authenticator = auth(idp)  # one refetch a minute at most
    await authenticator.verify_token(idp.sign(claims(), "k1"))
    for _ in range(200):
        with pytest.raises(AuthError, match="unknown signing key"):
            await authenticator.verify_token(idp.sign(claims(), "k1", header_kid=secrets.token_hex(8)))
    assert idp.fetches == 1
    # a token whose header names no key at all
    for header in ({"alg": "RS256"}, {"alg": "RS256", "kid": ""}, {"alg": "RS256", "kid": 7}):
        with pytest.raises(AuthError, match=r"names no signing key|Key ID header"):
            await authenticator.verify_token(forged(header, claims()))
    assert idp.fetches == 1


async def test_none_and_symmetric_algorithms_are_refused(idp: JwksServer) -> None:
    authenticator = auth(idp)
    public = idp.public_jwk("k1")
    refusals = [
        forged({"alg": "none", "kid": "k1", "typ": "JWT"}, claims()),
        forged(
            {"alg": "HS256", "kid": "k1"}, claims(), json.dumps(public).encode()
        ),  # the public key as secret
        forged({"alg": "HS256", "kid": "k1"}, claims(), public["n"].encode()),
        forged({"alg": "RS256", "kid": "k1"}, claims()),  # no signature
    ]
    for bad in refusals:
        with pytest.raises(AuthError, match="invalid token"):
            await authenticator.verify_token(bad)
    # a symmetric key in the set is not a signing key this server accepts, whatever the header says
    secret = secrets.token_bytes(32)
    idp.extra.append({"kty": "oct", "kid": "sym", "k": _b64(secret)})
    fresh = auth(idp)
    for header in ({"alg": "HS256", "kid": "sym"}, {"alg": "RS256", "kid": "sym"}):
        with pytest.raises(AuthError, match="invalid token"):
            await fresh.verify_token(forged(header, claims(), secret))


async def test_a_provider_that_fails_is_retried_no_faster_and_its_last_keys_stay_in_use(
    idp: JwksServer,
) -> None:
    idp.status = 500
    authenticator = auth(idp, jwks_refetch_seconds=60.0, jwks_cache_seconds=0.2)
    good = idp.sign(claims(), "k1")
    for _ in range(20):
        with pytest.raises(AuthError, match="signing keys are unavailable"):
            await authenticator.verify_token(good)
    assert idp.fetches == 1  # failures wait for the refetch interval too

    idp.status = 200
    recovering = auth(idp, jwks_refetch_seconds=0.1, jwks_cache_seconds=0.2)
    assert (await recovering.verify_token(good)).user_id == "amy"
    idp.status = 500  # the provider goes down; the cached set expires
    await asyncio.sleep(0.3)
    for _ in range(20):
        assert (await recovering.verify_token(good)).user_id == "amy"  # the last keys fetched
        await asyncio.sleep(0.02)
    assert idp.fetches <= 2 + 1 + 0.7 / 0.1  # one per refetch interval at most


async def test_a_slow_provider_neither_blocks_the_loop_nor_holds_a_request_longer_than_the_timeout(
    idp: JwksServer,
) -> None:
    idp.delay = 5.0
    authenticator = auth(idp, jwks_timeout_seconds=0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    with pytest.raises(AuthError, match="unavailable"):
        await authenticator.verify_token(idp.sign(claims(), "k1"))
    elapsed = time.monotonic() - started
    ticker.cancel()
    assert elapsed < 4.0  # the timeout (0.5 s) and a margin, not the provider's 5 s
    assert ticks >= 10  # the loop went on meanwhile


def test_the_jwks_url_setting_is_checked() -> None:
    SecuritySettings(jwks_url="https://tenant.auth0.com/.well-known/jwks.json")
    SecuritySettings(jwks_url="http://127.0.0.1:8080/jwks")
    SecuritySettings(jwks_url="http://localhost/jwks")
    for bad, reason in [
        ("http://idp.example/jwks", "https"),
        ("ftp://idp.example/jwks", "https"),
        ("file:///etc/passwd", "https"),
        ("https://", "https"),
        ("idp.example/jwks", "https"),
    ]:
        with pytest.raises(ValueError, match=reason):
            SecuritySettings(jwks_url=bad)
    with pytest.raises(ValueError, match="one source of keys"):
        SecuritySettings(jwks_url="https://idp.example/jwks", jwt_secret="x" * 32)


def test_token_create_says_tokens_come_from_the_provider(idp: JwksServer) -> None:
    with pytest.raises(TokenError, match="identity provider"):
        auth(idp).issue_token("amy", 60)
