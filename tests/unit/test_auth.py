"""Identity rules of the Authenticator, without a server."""

from __future__ import annotations

import time

import jwt
import pytest

from legend.adapters.auth import Authenticator, AuthError, is_loopback
from legend.settings import SecuritySettings, SettingsError

SECRET = "0123456789abcdef0123456789abcdef"


def jwt_auth(**extra: object) -> Authenticator:
    return Authenticator(SecuritySettings(auth="jwt", jwt_secret=SECRET, **extra))  # type: ignore[arg-type]


def make(claims: dict[str, object], key: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm="HS256")


@pytest.mark.parametrize(("host", "loop"), [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False),
                                            ("example.com", False)])  # fmt: skip
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


async def test_dev_identity_defaults_and_validates() -> None:
    auth = Authenticator(SecuritySettings())
    assert (await auth.websocket({}, [])).user_id == "anonymous"
    assert (await auth.websocket({"user_id": "user123"}, [])).user_id == "user123"
    assert (await auth.http({"x-user-id": "amy"}, {})).user_id == "amy"
    with pytest.raises(AuthError):
        await auth.websocket({"user_id": "a b"}, [])


def test_generated_admin_token_and_constant_time_check() -> None:
    auth = Authenticator(SecuritySettings())
    assert auth.generated_admin_token and len(auth.admin_token) >= 24
    assert auth.is_admin(f"Bearer {auth.admin_token}")
    assert not auth.is_admin(auth.admin_token) and not auth.is_admin(None) and not auth.is_admin("Bearer x")
    fixed = Authenticator(SecuritySettings(admin_token="fixed"))
    assert not fixed.generated_admin_token and fixed.is_admin("bearer fixed")


async def test_jwt_claims_audience_and_issuer() -> None:
    auth = jwt_auth(jwt_audience="legend", jwt_issuer="https://id.example")
    good = make({"sub": "amy", "aud": "legend", "iss": "https://id.example"})
    assert (await auth.websocket({"token": good}, [])).user_id == "amy"
    assert (await auth.http({"authorization": f"Bearer {good}"}, {})).user_id == "amy"
    for bad in (make({"sub": "amy", "aud": "other", "iss": "https://id.example"}), make({"sub": "amy"})):
        with pytest.raises(AuthError):
            await auth.websocket({"token": bad}, [])
    with pytest.raises(AuthError, match="not a valid user id"):
        await jwt_auth().verify_token(make({"sub": "a b"}))


async def test_jwt_mode_ignores_query_user_id() -> None:
    with pytest.raises(AuthError, match="missing token"):
        await jwt_auth().websocket({"user_id": "mallory"}, [])
    with pytest.raises(AuthError, match="missing token after"):
        await jwt_auth().websocket({}, ["bearer"])


def test_jwt_settings_must_be_usable() -> None:
    with pytest.raises(SettingsError, match=r"security\.jwt_secret \(HS256\)"):
        Authenticator(SecuritySettings(auth="jwt"))
    with pytest.raises(SettingsError, match="at least 32"):
        Authenticator(SecuritySettings(auth="jwt", jwt_secret="short"))


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "ok"),
    [
        ([], None, "h:1", True),
        ([], "http://h:1", "h:1", True),
        ([], "http://evil:1", "h:1", False),
        (["https://a.example"], "https://a.example/", "h:1", True),
        (["https://a.example"], "http://h:1", "h:1", True),  # the own host, with an allow-list too
        (["https://a.example"], "https://H:1", "h:1", True),  # scheme and case do not matter
        (["https://a.example"], "http://h:2", "h:1", False),  # another port is another origin
        (["https://a.example"], "http://evil:1", "h:1", False),
        ([], "null", "", False),  # a sandboxed page, and no Host to compare with
        (["*"], "http://anything", "h:1", True),
    ],
)
def test_origins(allowed: list[str], origin: str | None, host: str, ok: bool) -> None:
    assert Authenticator(SecuritySettings(allowed_origins=allowed)).origin_allowed(origin, host) is ok


def test_a_rebound_host_is_its_own_origin_but_dev_mode_refuses_the_host() -> None:
    """A page whose DNS name was rebound to the server sends Origin and Host of that name: the own-host
    rule lets it through the origin check, so in dev mode (identity from the query string) the Host check
    refuses it; in JWT mode it gets no further than a socket without the user's token."""
    dev = Authenticator(SecuritySettings(allowed_origins=["https://app.example.com"]))
    assert dev.origin_allowed("http://evil.example:8000", "evil.example:8000")
    assert not dev.host_allowed("evil.example:8000")
    assert dev.host_allowed("127.0.0.1:8000") and dev.origin_allowed(
        "http://127.0.0.1:8000", "127.0.0.1:8000"
    )
