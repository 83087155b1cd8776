"""The routes of a plugin that failed — at load, or in a register hook before its routes — answer 503 with
the reason, as docs/plugins.md promises, instead of a 404 that hides why."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from litestar import get
from litestar.testing import AsyncTestClient

from legend.app import create_app
from legend.bootstrap import Services
from legend.plugins import PluginConfig, RegisterRoute, hookimpl

from .samples import broken_routes

Build = Callable[..., Services]


@get("/api/typo/hello")
async def typo_hello() -> dict[str, str]:
    return {"hello": "never served"}


@get("/api/strict/hello")
async def strict_hello() -> dict[str, str]:
    return {"hello": "never served"}


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    register(typo_hello)


@hookimpl
def register_chanels(register: Any) -> None:  # sic: the plugin fails at load
    pass


class StrictConfig(PluginConfig):
    size: int = 1


@hookimpl
def broken_schema() -> type[StrictConfig]:
    raise RuntimeError("schema exploded")


async def test_routes_of_failed_plugins_answer_503_with_the_reason(build: Build) -> None:
    misspelt = types.SimpleNamespace(register_routes=register_routes, register_chanels=register_chanels)

    @hookimpl
    def strict_routes(register: RegisterRoute) -> None:
        register(strict_hello)

    schema_broken = types.SimpleNamespace(config_schema=broken_schema, register_routes=strict_routes)
    services = build(
        {},
        plugins={"broken_routes": broken_routes, "misspelt": misspelt, "schema_broken": schema_broken},
    )
    assert services.plugins is not None
    records = services.plugins.records
    assert {name: records[name].state.value for name in ("broken_routes", "misspelt", "schema_broken")} == {
        "broken_routes": "failed",
        "misspelt": "failed",
        "schema_broken": "failed",
    }
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        broken = await client.get("/api/broken/hello")
        assert broken.status_code == 503
        assert broken.json()["detail"] == (
            "plugin broken_routes is failed: register_channels: RuntimeError: channel setup broke"
        )
        typo = await client.get("/api/typo/hello")
        assert typo.status_code == 503
        assert typo.json()["detail"].startswith(
            "plugin misspelt is failed: hooks: unknown hook(s) register_chanels (misspelt?"
        )
        strict = await client.get("/api/strict/hello")
        assert strict.status_code == 503
        assert strict.json()["detail"] == (
            "plugin schema_broken is failed: config_schema: RuntimeError: schema exploded"
        )
        assert (await client.get("/health")).status_code == 200
    # the failure that counts stays the plugin's own error: probing its routes added none
    assert records["broken_routes"].errors == records["misspelt"].errors == 1


async def test_routes_of_a_plugin_that_is_not_enabled_are_not_mounted(build: Build) -> None:
    services = build({"enabled": []}, plugins={"broken_routes": broken_routes})
    assert services.plugins is not None
    assert services.plugins.records["broken_routes"].state.value == "disabled"
    async with AsyncTestClient(create_app(services=services), base_url="http://legend.localhost") as client:
        assert (await client.get("/api/broken/hello")).status_code == 404
