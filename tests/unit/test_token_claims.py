"""Tokens with extreme or odd claims, signed with the server's own key (so only the claims are wrong):
every token path answers 200 with a correct answer or 401 with the reason, never a 500.

``exp`` = 10^20 was accepted by the WebSocket and the REST API and made ``GET /api/auth/me`` answer 500
(a date past the year 9999), with nothing logged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from legend.adapters.auth import MAX_TOKEN_TTL, Authenticator, AuthError, TokenError
from legend.app import create_app
from legend.bootstrap import bootstrap
from legend.cli import main
from legend.settings import DatabaseSettings, SecuritySettings, Settings

SECRET = "0123456789abcdef0123456789abcdef"
# hundreds of requests as one user: the request limits are not what is tested here
SECURITY = SecuritySettings(
    auth="jwt", jwt_secret=SECRET, jwt_leeway_seconds=0, api_rate=0, api_address_rate=0
)

# What a JSON claim can be, and then some: numbers of any size, NaN and the infinities (json.dumps writes
# them and PyJWT reads them back), numbers as strings, booleans, null, lists and objects.
ODD = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([10**20, 1e20, -1, 0, 2**63, 253_402_300_800, float("nan"), float("inf"), -float("inf")]),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["9999999999", "1e20", "1_000", " 17 ", "", "x" * 65, "a" * 64, "amy|1"]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
CLAIMS = st.sampled_from(["exp", "iat", "nbf", "sub"])


IN_TEN_MINUTES = (
    "in ten minutes, as a float"  # a parameter stands for this: parameters are made at collection
)


def token(**claims: Any) -> str:
    now = int(time.time())
    claims = {k: time.time() + 600.5 if v == IN_TEN_MINUTES else v for k, v in claims.items()}
    return jwt.encode({"sub": "amy", "iat": now, "exp": now + 600, **claims}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    db = tmp_path_factory.mktemp("claims") / "legend.db"
    settings = Settings(security=SECURITY, database=DatabaseSettings(url=f"sqlite+aiosqlite:///{db}"))
    services = bootstrap(settings, run_quote_poller=False)
    with TestClient(create_app(services=services), base_url="http://legend.localhost") as test_client:
        yield test_client


def check_rest(client: TestClient[Any], bearer: str) -> int:
    """The status of /api/auth/me and /api/watchlist, which must agree; a 200 says a real date."""
    headers = {"Authorization": f"Bearer {bearer}"}
    me = client.get("/api/auth/me", headers=headers)
    listing = client.get("/api/watchlist", headers=headers)
    assert me.status_code in (200, 401), me.text
    assert listing.status_code == me.status_code, listing.text
    if me.status_code == 401:
        assert me.json()["detail"].startswith("authentication required: "), me.text
    else:
        datetime.fromisoformat(me.json()["expires_at"].replace("Z", "+00:00"))
    return int(me.status_code)


def test_a_token_that_expires_in_the_year_three_quintillion_is_refused(client: TestClient[Any]) -> None:
    bearer = token(exp=10**20)
    assert check_rest(client, bearer) == 401
    assert "out of range" in client.get("/api/auth/me", headers={"Authorization": f"Bearer {bearer}"}).text
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/api/ws?token={bearer}") as ws,
    ):
        ws.receive()
    assert closed.value.code == 4401 and "out of range" in closed.value.detail


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"exp": 1e20}, 401),
        ({"exp": float("inf")}, 401),
        ({"exp": float("nan")}, 401),
        ({"exp": "9999999999"}, 401),  # PyJWT takes a string of digits; RFC 7519 says a number
        ({"exp": True}, 401),
        ({"exp": -1}, 401),
        ({"exp": IN_TEN_MINUTES}, 200),  # a float is a NumericDate too (made when the test runs)
        ({"exp": 253_402_300_799}, 200),  # the last second of 9999
        ({"exp": 253_402_300_800}, 401),
        ({"iat": 10**20}, 401),
        ({"iat": -(10**20)}, 401),
        ({"iat": -5}, 200),
        ({"nbf": 1e300}, 401),
        ({"nbf": "0"}, 401),
        ({"sub": 42}, 401),
        ({"sub": "a" * 65}, 401),
        ({"sub": "x" * 100_000}, 401),
        ({"sub": ["amy"]}, 401),
    ],
)
def test_each_odd_claim_has_a_clear_answer(
    client: TestClient[Any], claims: dict[str, Any], status: int
) -> None:
    bearer = token(**claims)
    assert check_rest(client, bearer) == status
    # the WebSocket: the stream's greeting, or 4401 with the same reason
    if status == 200:
        with client.websocket_connect("/api/ws", subprotocols=["bearer", bearer]) as ws:
            assert ws.receive_json()["type"] == "connection"
        return
    reason = client.get("/api/auth/me", headers={"Authorization": f"Bearer {bearer}"}).json()["detail"]
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/ws", subprotocols=["bearer", bearer]) as ws,
    ):
        ws.receive()
    assert closed.value.code == 4401 and reason.endswith(closed.value.detail)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=CLAIMS, value=ODD)
def test_any_claim_value_is_answered_200_or_401(client: TestClient[Any], name: str, value: Any) -> None:
    check_rest(client, token(**{name: value}))


@settings(max_examples=300, deadline=None)
@given(name=CLAIMS, value=ODD)
async def test_the_authenticator_raises_only_auth_errors(name: str, value: Any) -> None:
    try:
        identity = await Authenticator(SECURITY).verify_token(token(**{name: value}))
    except AuthError as exc:
        assert exc.reason
    else:
        assert identity.expires_at is not None
        datetime.fromtimestamp(identity.expires_at)


@settings(max_examples=100, deadline=None)
@given(ttl=st.one_of(st.integers(), st.integers(min_value=-(10**40), max_value=10**40)))
def test_token_create_takes_any_ttl_or_says_why_not(ttl: int) -> None:
    auth = Authenticator(SECURITY)
    if 0 < ttl <= MAX_TOKEN_TTL:
        assert auth.issue_token("amy", ttl).expires_at.year >= 1970
    else:
        with pytest.raises(TokenError, match="ttl: expected 1 to"):
            auth.issue_token("amy", ttl)


@pytest.mark.parametrize("ttl", ["1e20", "inf", "nan", "12.5", "100000000000000000000", "-1"])
def test_the_cli_refuses_an_odd_ttl_with_a_message(
    ttl: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(f'[security]\nauth = "jwt"\njwt_secret = "{SECRET}"\n', encoding="utf-8")
    try:
        code = main(["token", "create", "--user", "amy", "--ttl", ttl, "--config", str(config)])
    except SystemExit as exc:  # argparse: not a whole number
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert "ttl" in err and "Traceback" not in err
