"""Who is connecting: development user ids, JWTs (verified here, and issued here for ``legend token
create``, so the claims are decided in one place), the admin token and the origin allow-list."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msgspec

from legend.adapters.jwks import JwksKeys, KeyUnavailable
from legend.domain.symbols import is_valid_user_id
from legend.settings import SecuritySettings, SettingsError

ANONYMOUS = "anonymous"
BEARER_SUBPROTOCOL = "bearer"
REQUIRED_CLAIMS = ("sub", "exp")  # a user token without them is refused
MAX_TOKEN_TTL = 366 * 86_400  # seconds; a token meant to last longer should not be a bearer token
MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a datetime holds


class AuthError(Exception):
    """The connection or request cannot be identified; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Identity(msgspec.Struct, frozen=True):
    """The authenticated user, the WebSocket subprotocol to accept (when the token came in one), and when
    the credentials stop being valid (epoch seconds; the connection is closed then)."""

    user_id: str
    subprotocol: str | None = None
    expires_at: float | None = None


class TokenError(Exception):
    """A user token cannot be issued with these settings or arguments; the message says why."""


class IssuedToken(msgspec.Struct, frozen=True):
    """A signed user token and what it says."""

    token: str
    user_id: str
    algorithm: str
    expires_at: datetime


def _private_key(pem: str) -> Any:
    """An RSA private key from PEM text, with an error that names the problem."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise TokenError(
            "--key: the private key is encrypted; give an unencrypted copy (openssl pkey -in KEY -out FILE)"
        ) from None
    except ValueError:
        raise TokenError("--key: not a private key in PEM format (-----BEGIN PRIVATE KEY-----)") from None
    if not isinstance(key, RSAPrivateKey):
        raise TokenError(f"--key: RS256 needs an RSA private key, got {type(key).__name__}")
    return key


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: the only binds where development identity is allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _pem(value: str, name: str) -> str:
    """A PEM given inline, or the contents of the file it names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {value}: {exc}") from None


class StaticKey:
    """The one key of ``security.jwt_secret`` (HS256) or ``security.jwt_public_key`` (RS256)."""

    def __init__(self, security: SecuritySettings) -> None:
        if security.jwt_public_key:
            self.key, self.algorithms = _pem(security.jwt_public_key, "security.jwt_public_key"), ["RS256"]
        elif security.jwt_secret:
            if len(security.jwt_secret) < 32:
                raise SettingsError("security.jwt_secret: use at least 32 characters for HS256")
            self.key, self.algorithms = security.jwt_secret, ["HS256"]
        else:
            raise SettingsError(
                "security.auth = 'jwt' needs security.jwks_url (an identity provider's keys), "
                "security.jwt_secret (HS256) or security.jwt_public_key (RS256)"
            )

    async def resolve(self, token: str) -> tuple[Any, list[str]]:
        return self.key, self.algorithms


def _key_source(security: SecuritySettings) -> StaticKey | JwksKeys | None:
    if security.auth != "jwt":
        return None
    if security.jwks_url:
        return JwksKeys(
            security.jwks_url,
            lifespan=security.jwks_cache_seconds,
            cooldown=security.jwks_refetch_seconds,
            timeout=security.jwks_timeout_seconds,
        )
    return StaticKey(security)


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """A time claim as RFC 7519 says it is (a JSON number of seconds since 1970, here one a date can
    hold); PyJWT also takes strings of digits and any size of number."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # != : NaN
        raise AuthError(f"invalid token: '{name}' is not a number of seconds since 1970")
    if not -MAX_EPOCH <= value <= MAX_EPOCH:
        raise AuthError(f"invalid token: '{name}' is out of range (beyond the year 9999)")
    return float(value)


class Authenticator:
    """Identifies WebSocket clients and REST callers, and checks the admin token."""

    def __init__(self, security: SecuritySettings, admin_token: str | None = None) -> None:
        self.security = security
        self.mode = security.auth
        self.admin_token = admin_token or security.admin_token or secrets.token_urlsafe(24)
        self.generated_admin_token = not (admin_token or security.admin_token)
        self._keys = _key_source(security)

    # ───────────── users ─────────────

    async def verify_token(self, token: str, subprotocol: str | None = None) -> Identity:
        """The identity in a valid token; raises AuthError for expired, forged or malformed ones."""
        if self._keys is None:
            raise AuthError("tokens are not used: security.auth is 'dev'")
        try:
            key, algorithms = await self._keys.resolve(token)
        except KeyUnavailable as exc:
            raise AuthError(str(exc)) from None
        return self._identity(token, key, algorithms, subprotocol)

    def _identity(self, token: str, key: Any, algorithms: list[str], subprotocol: str | None) -> Identity:
        """Checks the signature and the claims; every odd claim is an AuthError, never another error."""
        leeway = self.security.jwt_leeway_seconds
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.security.jwt_audience,
                issuer=self.security.jwt_issuer,
                leeway=leeway,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_aud": self.security.jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {str(exc)[:200]}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not is_valid_user_id(subject):
            raise AuthError("invalid token: 'sub' is not a valid user id")
        for name in ("iat", "nbf"):
            _numeric_date(claims, name)
        expires = _numeric_date(claims, "exp")
        if expires is None or expires + leeway > MAX_EPOCH:  # (None: PyJWT requires it; for the types)
            raise AuthError("invalid token: 'exp' is out of range (beyond the year 9999)")
        return Identity(subject, subprotocol, expires + leeway)

    def _dev_user(self, query: Mapping[str, str]) -> str:
        user_id = query.get("user_id") or ANONYMOUS
        if not is_valid_user_id(user_id):
            raise AuthError("invalid user_id: use 1-64 letters, digits, '_', '.', '@', '|' or '-'")
        return user_id

    async def websocket(self, query: Mapping[str, str], subprotocols: list[str]) -> Identity:
        """Identify a WebSocket: ``?user_id=`` in development; a JWT in ``?token=`` or the subprotocols
        ``["bearer", <token>]`` in JWT mode."""
        if self.mode == "dev":
            return Identity(self._dev_user(query))
        if BEARER_SUBPROTOCOL in subprotocols:
            index = subprotocols.index(BEARER_SUBPROTOCOL)
            if index + 1 >= len(subprotocols):
                raise AuthError("missing token after the 'bearer' subprotocol")
            return await self.verify_token(subprotocols[index + 1], BEARER_SUBPROTOCOL)
        token = query.get("token")
        if not token:
            raise AuthError("missing token: pass ?token=<JWT> or the subprotocols ['bearer', <JWT>]")
        return await self.verify_token(token)

    async def http(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Identity:
        """Identify a REST caller: ``Authorization: Bearer <JWT>`` in JWT mode; in development the
        ``X-User-Id`` header or ``?user_id=``."""
        if self.mode == "dev":
            return Identity(
                self._dev_user({"user_id": headers.get("x-user-id") or query.get("user_id") or ""})
            )
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing token: send Authorization: Bearer <JWT>")
        return await self.verify_token(token.strip())

    @property
    def key_fetches(self) -> int | None:
        """Requests made for the identity provider's key set; None without security.jwks_url."""
        return self._keys.client.fetches if isinstance(self._keys, JwksKeys) else None

    def close(self) -> None:
        """Stop the key fetcher's thread (security.jwks_url)."""
        if isinstance(self._keys, JwksKeys):
            self._keys.close()

    # ───────────── issuing ─────────────

    def issue_token(self, user_id: str, ttl_seconds: int, private_key: str | None = None) -> IssuedToken:
        """A user token this server accepts: ``sub``, ``iat``, ``exp``, plus ``aud`` / ``iss`` when they
        are configured. HS256 tokens are signed with ``security.jwt_secret``; RS256 ones need the private
        key (a PEM or a path) matching ``security.jwt_public_key``, which the server itself never holds.

        The token is verified before it is returned, by the same code that verifies connections, so a
        private key that does not match the configured public key is an error here, not a 4401 later.
        Raises TokenError with a reason an administrator can act on.
        """
        if self.mode != "jwt":
            raise TokenError(
                "security.auth is 'dev': the server takes the user id from ?user_id= and ignores tokens; "
                "set security.auth = 'jwt' (with security.jwt_secret or security.jwt_public_key) first"
            )
        if not isinstance(self._keys, StaticKey):
            raise TokenError(
                "security.jwks_url is set: tokens come from your identity provider, which holds the "
                "signing keys; sign in there (or remove jwks_url to sign with jwt_secret)"
            )
        if not is_valid_user_id(user_id):
            raise TokenError(
                f"invalid user id {user_id!r}: use 1-64 letters, digits, '_', '.', '@', '|' or '-'"
            )
        if not 0 < ttl_seconds <= MAX_TOKEN_TTL:
            raise TokenError(f"ttl: expected 1 to {MAX_TOKEN_TTL} seconds, got {ttl_seconds}")
        algorithm = self._keys.algorithms[0]
        signing_key: Any
        if algorithm == "RS256":
            if private_key is None:
                raise TokenError(
                    "security.jwt_public_key is set (RS256): pass the matching private key with --key FILE"
                )
            try:
                signing_key = _private_key(_pem(private_key, "--key"))
            except SettingsError as exc:
                raise TokenError(str(exc)) from None
        else:
            if private_key is not None:
                raise TokenError(
                    "--key is for RS256 (security.jwt_public_key); this server uses HS256 and signs "
                    "with security.jwt_secret"
                )
            signing_key = self._keys.key
        issued_at = int(time.time())
        claims: dict[str, Any] = {"sub": user_id, "iat": issued_at, "exp": issued_at + ttl_seconds}
        if self.security.jwt_audience is not None:
            claims["aud"] = self.security.jwt_audience
        if self.security.jwt_issuer is not None:
            claims["iss"] = self.security.jwt_issuer
        token = jwt.encode(claims, signing_key, algorithm=algorithm)
        try:
            self._identity(token, self._keys.key, self._keys.algorithms, None)
        except AuthError as exc:
            raise TokenError(
                f"the new token does not verify with this server's settings ({exc.reason}): "
                "is --key the private half of security.jwt_public_key?"
            ) from None
        return IssuedToken(token, user_id, algorithm, datetime.fromtimestamp(claims["exp"], UTC))

    # ───────────── admins ─────────────

    def is_admin(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.admin_token.encode()
        )

    # ───────────── origins ─────────────

    def host_allowed(self, host: str | None) -> bool:
        """In development mode only loopback names may be in the Host header: a page whose DNS name was
        rebound to 127.0.0.1 must not reach a server that believes any user id it is given."""
        if self.mode != "dev" or self.security.allow_insecure:
            return True
        name = urlsplit(f"//{host or ''}").hostname or ""
        return is_loopback(name) or name.endswith(".localhost")

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser) passes; so does the server's own host (the Origin's host and port are
        the Host header's, whatever the scheme: the dashboard it serves itself), and any origin in the
        allow-list (``["*"]``: every one)."""
        if not origin:
            return True
        netloc = urlsplit(origin).netloc.lower()
        if netloc and netloc == (host or "").strip().lower():
            return True
        allowed = self.security.allowed_origins
        return "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}
