"""A plugin with routes that fails before its routes are registered (its register_channels raises): its
paths must answer 503 with the reason, not 404."""

from __future__ import annotations

from litestar import get

from legend.plugins import RegisterChannel, RegisterRoute, hookimpl


@get("/api/broken/hello")
async def hello() -> dict[str, str]:
    return {"hello": "never served"}


@hookimpl
def register_channels(register: RegisterChannel) -> None:
    raise RuntimeError("channel setup broke")


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(hello)
