"""How to sign in: the public auth configuration the dashboard reads before it connects, and who the
caller's credentials say they are (so a pasted token is checked by the server, with its reason)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Controller, Request, get

from legend.adapters.auth import Authenticator
from legend.adapters.http.dependencies import Service
from legend.adapters.http.user_api import identify
from legend.domain.timefmt import from_epoch, iso
from legend.settings import SecuritySettings


class AuthConfig(msgspec.Struct):
    """What a client needs to know before it connects."""

    mode: Literal["dev", "jwt"]  # dev: ?user_id= / X-User-Id; jwt: a token is required
    login_url: str | None  # JWT mode: where to get a token (security.login_url); null: paste one


class Me(msgspec.Struct):
    """The identity the server sees in the caller's credentials."""

    user_id: str
    mode: Literal["dev", "jwt"]
    expires_at: str | None  # ISO-8601 (UTC) when the token expires, leeway included; null in dev mode


class AuthController(Controller):
    """Sign-in: the server's auth mode and login URL, and the caller's identity."""

    path = "/api/auth"
    tags = ["auth"]

    @get("/config", summary="Auth mode and login URL (public)", sync_to_thread=False)
    def config(self, security: Service[SecuritySettings]) -> AuthConfig:
        """``mode`` is ``dev`` (the user id comes from ``?user_id=`` or ``X-User-Id``; loopback only) or
        ``jwt`` (every connection and REST call needs a token: ``Authorization: Bearer <JWT>``, the
        WebSocket subprotocols ``["bearer", <JWT>]`` or ``?token=``). ``login_url`` is where a user gets a
        token when one is configured; an administrator can also issue one with
        ``legend token create --user ID``."""
        return AuthConfig(mode=security.auth, login_url=security.login_url)

    @get(
        "/me",
        summary="The caller's identity",
        security=[{"userToken": []}, {"devUserId": []}],
    )
    async def me(self, request: Request[Any, Any, Any], authenticator: Service[Authenticator]) -> Me:
        """The user id in the caller's token (or development identity) and when the token expires; 401
        with the reason (``token expired``, ``invalid token: ...``) when the server refuses it."""
        identity = await identify(request, authenticator)
        expires = identity.expires_at
        return Me(
            user_id=identity.user_id,
            mode=authenticator.mode,
            expires_at=None if expires is None else iso(from_epoch(expires)),
        )
