"""The signing keys of an OpenID Connect provider (Auth0, Keycloak, Cognito, Entra ID …), read from its
JWKS URL (``security.jwks_url``) with PyJWT's ``PyJWKClient``.

What this adds to the client:

- the event loop never waits on the network: a key in the cached set is found without a thread; a miss
  (a new ``kid``, or the cached set expired) runs the client's blocking urllib fetch on one thread of its
  own, bounded by ``security.jwks_timeout_seconds``;
- an unknown ``kid`` refetches the set at most once per ``security.jwks_refetch_seconds`` (the client's
  cooldown), so tokens with made-up key ids cannot make the server hammer the provider;
- a failed fetch is retried no sooner either, and while the provider is unreachable the last key set
  fetched stays in use (keys it held were the provider's; a new key waits for the provider to answer);
- only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA), each key with the algorithm of its JWK:
  ``alg: none`` and a symmetric key (an HS256 token "signed" with a public key) are refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError, PyJWKClientError

log = logging.getLogger("legend.auth")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_KID_LENGTH = 256


class KeyUnavailable(Exception):
    """No key can verify this token; the message is safe to show the client."""


class _Client(PyJWKClient):
    """``PyJWKClient`` whose failed fetches are rate limited too, and which keeps the last good key set
    while the provider is unreachable (the stock client retries a failed fetch on every request)."""

    def __init__(self, uri: str, *, lifespan: float, cooldown: float, timeout: float) -> None:
        super().__init__(
            uri,
            cache_jwk_set=True,
            lifespan=lifespan,
            cooldown_duration=cooldown,
            timeout=timeout,
            headers={"User-Agent": "legend-realtime", "Accept": "application/json"},
        )
        self._failed_at: float | None = None
        self._last_good: Any = None
        self.fetches = 0  # attempts that reached the network, for the logs and the tests

    def fetch_data(self) -> Any:
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < self.cooldown_duration:
            if self._last_good is not None:
                return self._keep_last_good(now)
            raise PyJWKClientConnectionError("the last fetch failed; retrying later")
        self.fetches += 1
        try:
            data = super().fetch_data()
        except (jwt.PyJWTError, ValueError, OSError) as exc:  # ValueError: a body that is not JSON
            self._failed_at = now
            log.warning("cannot fetch the signing keys from %s: %s", self.uri, exc)
            if self._last_good is None:
                raise PyJWKClientConnectionError(str(exc)) from None
            return self._keep_last_good(now)
        self._failed_at = None
        self._last_good = data
        return data

    def _keep_last_good(self, now: float) -> Any:
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(self._last_good)
        self._last_successful_fetch = now
        return self._last_good


class JwksKeys:
    """Finds the key for a token in a provider's JWKS (see the module docstring)."""

    def __init__(self, url: str, *, lifespan: float, cooldown: float, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.client = _Client(url, lifespan=lifespan, cooldown=cooldown, timeout=timeout)
        # One thread: concurrent misses queue behind one fetch (which then answers them all from the
        # cache) instead of taking the loop's default executor. Made at the first miss.
        self._executor: ThreadPoolExecutor | None = None

    async def resolve(self, token: str) -> tuple[PyJWK, list[str]]:
        """The key the token's header names and the one algorithm it may be verified with."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise KeyUnavailable(f"invalid token: {exc}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise KeyUnavailable(
                f"invalid token: algorithm {str(alg)[:20]!a} is not accepted (the identity provider "
                "signs with RS256, ES256 or another public-key algorithm)"
            )
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise KeyUnavailable("invalid token: its header names no signing key ('kid')")
        key = self._cached(kid)
        if key is None:
            key = await self._fetch(kid)
        if key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
            raise KeyUnavailable(f"invalid token: signing key {kid[:40]!a} is not a public key")
        if key.algorithm_name != alg:
            raise KeyUnavailable(
                f"invalid token: signing key {kid[:40]!a} is for {key.algorithm_name}, not {alg}"
            )
        return key, [key.algorithm_name]

    def _cached(self, kid: str) -> PyJWK | None:
        """The key from the cached set, without a thread (None: not there, or the set expired)."""
        cache = self.client.jwk_set_cache
        keys = cache.get() if cache is not None else None
        if keys is None:
            return None
        for key in keys.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    async def _fetch(self, kid: str) -> PyJWK:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="legend-jwks")
        job = asyncio.get_running_loop().run_in_executor(self._executor, self.client.get_signing_key, kid)
        try:
            return await asyncio.wait_for(job, self.timeout + 1.0)
        except PyJWKClientConnectionError:
            raise KeyUnavailable("the identity provider's signing keys are unavailable; try again") from None
        except TimeoutError:
            raise KeyUnavailable("the identity provider's signing keys are unavailable; try again") from None
        except PyJWKClientError:
            raise KeyUnavailable(f"invalid token: unknown signing key {kid[:40]!a}") from None
        except jwt.PyJWTError as exc:  # a key set the provider sent that PyJWT cannot read
            log.warning("unusable key set from %s: %s", self.url, exc)
            raise KeyUnavailable("the identity provider's signing keys are unusable") from None

    def close(self) -> None:
        """Let the fetch thread go (a fetch under way ends by its timeout); a later miss makes another."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
