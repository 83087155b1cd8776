"""Request limits on the REST API (``/api/*``): a token bucket per client address, checked before
anything else, and one per user, checked once the caller is identified (``user_api.identify``), so that
one user's script looping on the API gets 429 with ``Retry-After`` instead of the server's time.

Litestar's ``RateLimitMiddleware`` was not used: it counts fixed windows (no burst), keys by one
identifier only (not the user, whose identity is known only once the token is verified), serialises
every request behind one lock, and says when to retry in ``RateLimit-Reset`` rather than ``Retry-After``.

The buckets are this instance's (behind a load balancer over N instances a client gets up to N times the
rate). The address is the ASGI scope's ``client``, which uvicorn rewrites from ``X-Forwarded-For`` when
the proxy is trusted (``server.forwarded_allow_ips``); IPv6 addresses count per /64, the block one host
is usually given. Requests bearing the admin token are not limited (the admin API and automation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any

from litestar.datastructures import Headers
from litestar.enums import MediaType, ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

from legend.adapters.auth import Authenticator
from legend.adapters.http.errors import error_json
from legend.domain.throttle import KeyedBuckets
from legend.settings import SecuritySettings

LIMITED_PREFIX = "/api/"


def address_key(host: str) -> str:
    """The bucket of a client address: the address itself, an IPv6 one's /64."""
    try:
        address = ip_address(host)
    except ValueError:
        return host
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def retry_after(seconds: float) -> str:
    """Whole seconds, at least 1 (``Retry-After`` takes no fractions)."""
    return str(max(1, math.ceil(seconds)))


class ApiLimits:
    """The per-user and per-address buckets of this instance (see the module docstring)."""

    def __init__(self, security: SecuritySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = KeyedBuckets(security.api_rate, security.api_burst) if security.api_rate > 0 else None
        self.addresses = (
            KeyedBuckets(security.api_address_rate, security.api_address_burst)
            if security.api_address_rate > 0
            else None
        )
        self.clock = clock
        self.refused_user = 0
        self.refused_address = 0

    def check_user(self, user_id: str) -> None:
        """Raise 429 when this user is over the limit."""
        if self.users is None:
            return
        wait = self.users.take(user_id, self.clock())
        if wait:
            self.refused_user += 1
            raise TooManyRequestsException(
                detail=f"too many requests for this user: at most {self.users.rate:g} a second "
                f"(bursts of {self.users.burst}); retry in {retry_after(wait)} s",
                headers={"Retry-After": retry_after(wait)},
            )

    def middleware(self, authenticator: Authenticator) -> Callable[[ASGIApp], ASGIApp]:
        """The per-address check, before routing: a refused request costs no more than this."""
        addresses = self.addresses

        def wrap(app: ASGIApp) -> ASGIApp:
            if addresses is None:
                return app

            # Not a coroutine: it returns the next app's awaitable, so that no frame of its own stays
            # on the stack of every WebSocket connection for the connection's life.
            def middleware(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
                if (
                    scope["type"] == ScopeType.HTTP
                    and scope["path"].startswith(LIMITED_PREFIX)
                    and not authenticator.is_admin(Headers.from_scope(scope).get("authorization"))
                ):
                    client = scope.get("client")
                    key = address_key(str(client[0])) if client else "unknown"
                    wait = addresses.take(key, self.clock())
                    if wait:
                        self.refused_address += 1
                        return _too_many(scope, receive, send, addresses, wait)
                return app(scope, receive, send)

            return middleware

        return wrap


async def _too_many(scope: Scope, receive: Receive, send: Send, buckets: KeyedBuckets, wait: float) -> None:
    detail = (
        f"too many requests from your address: at most {buckets.rate:g} a second (bursts of "
        f"{buckets.burst}); retry in {retry_after(wait)} s"
    )
    answer: ASGIResponse = ASGIResponse(
        body=error_json(429, detail),
        status_code=429,
        media_type=MediaType.JSON,
        headers={"Retry-After": retry_after(wait)},
    )
    await answer(scope, receive, send)


def limits_of(request: Any) -> ApiLimits | None:
    """The app's limits (``create_app`` puts them in its state)."""
    limits = getattr(request.app.state, "api_limits", None)
    return limits if isinstance(limits, ApiLimits) else None
