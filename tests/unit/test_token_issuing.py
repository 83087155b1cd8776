"""Issuing user tokens (``legend token create``): the claims the verifier wants, the right key, clear refusals."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from legend.adapters.auth import MAX_TOKEN_TTL, Authenticator, AuthError, TokenError
from legend.settings import SecuritySettings

SECRET = "0123456789abcdef0123456789abcdef"


def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def test_hs256_token_has_the_claims_the_server_checks() -> None:
    auth = Authenticator(
        SecuritySettings(
            auth="jwt", jwt_secret=SECRET, jwt_audience="legend", jwt_issuer="https://id.example"
        )
    )
    before = int(time.time())
    issued = auth.issue_token("amy", 600)
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience="legend")
    assert claims["sub"] == "amy" and claims["aud"] == "legend" and claims["iss"] == "https://id.example"
    assert claims["exp"] - claims["iat"] == 600 and claims["iat"] >= before
    assert issued.algorithm == "HS256" and int(issued.expires_at.timestamp()) == claims["exp"]
    assert (await auth.verify_token(issued.token)).user_id == "amy"
    # a server with another audience refuses it
    other = Authenticator(SecuritySettings(auth="jwt", jwt_secret=SECRET, jwt_audience="elsewhere"))
    with pytest.raises(AuthError, match="Audience"):
        await other.verify_token(issued.token)


def test_without_audience_and_issuer_none_are_added() -> None:
    issued = Authenticator(SecuritySettings(auth="jwt", jwt_secret=SECRET)).issue_token("bob", 60)
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "iat", "exp"}


def test_rs256_signs_with_the_private_key_given_inline_or_as_a_file(tmp_path: Path) -> None:
    private, public = rsa_pair()
    auth = Authenticator(SecuritySettings(auth="jwt", jwt_public_key=public))
    inline = auth.issue_token("carol", 60, private)
    key_file = tmp_path / "private.pem"
    key_file.write_text(private)
    from_file = auth.issue_token("carol", 60, str(key_file))
    for issued in (inline, from_file):
        assert issued.algorithm == "RS256"
        assert jwt.decode(issued.token, public, algorithms=["RS256"])["sub"] == "carol"


def test_rs256_refuses_a_key_that_is_not_the_pair_of_the_public_key(tmp_path: Path) -> None:
    _, public = rsa_pair()
    stranger, _ = rsa_pair()
    auth = Authenticator(SecuritySettings(auth="jwt", jwt_public_key=public))
    with pytest.raises(TokenError, match=r"does not verify.*private half of security\.jwt_public_key"):
        auth.issue_token("carol", 60, stranger)
    with pytest.raises(TokenError, match="pass the matching private key with --key"):
        auth.issue_token("carol", 60)
    with pytest.raises(TokenError, match="not a private key in PEM"):
        auth.issue_token("carol", 60, public)
    with pytest.raises(TokenError, match="cannot read"):
        auth.issue_token("carol", 60, str(tmp_path / "missing.pem"))
    encrypted = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    )
    with pytest.raises(TokenError, match="encrypted"):
        auth.issue_token("carol", 60, encrypted.decode())
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(TokenError, match="RSA private key"):
        auth.issue_token("carol", 60, ec_key.decode())


def test_refusals_name_the_problem() -> None:
    with pytest.raises(TokenError, match=r"security\.auth is 'dev'"):
        Authenticator(SecuritySettings()).issue_token("amy", 60)
    auth = Authenticator(SecuritySettings(auth="jwt", jwt_secret=SECRET))
    with pytest.raises(TokenError, match="invalid user id"):
        auth.issue_token("a b", 60)
    for ttl in (0, -5, MAX_TOKEN_TTL + 1):
        with pytest.raises(TokenError, match="ttl"):
            auth.issue_token("amy", ttl)
    with pytest.raises(TokenError, match="--key is for RS256"):
        auth.issue_token("amy", 60, "whatever.pem")
