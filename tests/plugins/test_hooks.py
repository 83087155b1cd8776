"""Hook registration and isolation, in process: what each hook registers reaches the server, and a plugin
that raises, hangs, misspells a hook or publishes invalid messages is logged, counted and isolated."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from legend.app import create_app
from legend.bootstrap import Services
from legend.domain.channels import ChannelError, ChannelSpec, Delivery, InvalidMessage
from legend.domain.messages import Subscribe
from legend.plugins import Message, hookimpl
from legend.settings import QuotesSettings
from tests.support.streaming import send
from tests.support.transport import RecordingTransport

from .helpers import eventually, settings_with
from .samples import echo, hanging, hanging_startup, misspelt, raising

Build = Callable[..., Services]


def state(services: Services, name: str) -> dict[str, Any]:
    assert services.plugins is not None
    return next(p for p in services.plugins.summaries() if p["name"] == name)


async def test_each_register_hook_reaches_the_server(build: Build) -> None:
    services = build({"echo": {"greeting": "ahoy"}}, plugins={"echo": echo})
    echo_state = state(services, "echo")
    assert echo_state["state"] == "enabled"
    assert echo_state["hooks"] == [
        "config_schema",
        "on_shutdown",
        "on_startup",
        "register_channels",
        "register_feeds",
        "register_quote_providers",
        "register_routes",
    ]
    spec = services.registry.get("echo")
    assert spec.schema is echo.Echo and spec.message_types == ("echo",) and spec.topic == "echo"
    assert echo_state["channels"] == ["echo"] and echo_state["providers"] == ["canned"]
    assert echo_state["routes"] == 1 and set(echo_state["feeds"]) == {"chatter"}
    assert services.plugins is not None and services.plugins.records["echo"].config == echo.EchoConfig(
        greeting="ahoy"
    )
    # the built-ins load the same way, beside it
    assert state(services, "news")["state"] == state(services, "portfolio")["state"] == "enabled"
    assert {"news", "portfolio"} <= set(services.registry.names())

    app = create_app(services=services)
    async with AsyncTestClient(
        app, base_url="http://legend.localhost"
    ) as client:  # runs on_startup, the feeds, and on_shutdown at the end
        assert f"startup {'echo'}" in echo.EVENTS
        response = await client.get("/api/echo/hello")
        assert response.json() == {"greeting": "ahoy", "plugin": "echo"}
        messages = await eventually(lambda: _history(services, "echo"), what="an echo message")
        assert (
            messages[0]["type"] == "echo"
            and messages[0]["text"] == "ahoy"
            and messages[0]["channel"] == "echo"
        )
        assert messages[0]["timestamp"]
        crash = await client.get("/api/echo/crash")  # an exception in a plugin's handler: a 500, counted
        assert crash.status_code == 500
        assert state(services, "echo")["errors"] == 1
        assert "handler crashed" in state(services, "echo")["last_error"]
        assert (await client.get("/health")).status_code == 200
    assert "shutdown echo" in echo.EVENTS


def _history(services: Services, stream: str) -> list[dict[str, Any]]:
    log = getattr(services.backplane, "_log")  # noqa: B009 - the in-memory backplane's own history
    return [msgspec.json.decode(e.text) for e in log.after(stream, None)[0]]


async def test_a_plugin_can_provide_the_quote_provider(build: Build) -> None:
    settings = settings_with({"enabled": ["echo"]})
    settings = msgspec.structs.replace(settings, quotes=QuotesSettings(provider="canned"))  # type: ignore[arg-type]
    services = build(settings=settings, plugins={"echo": echo})
    assert services.provider.name == "canned"
    quotes = await services.provider.fetch(["AAPL"])
    assert quotes[0].price == 100.0


async def test_without_a_plugin_provider_the_default_is_kept(build: Build) -> None:
    services = build({"enabled": []})
    assert services.provider.name == "simulated"


async def test_a_raising_plugin_is_failed_and_the_others_go_on(build: Build) -> None:
    services = build({"echo": {}}, plugins={"raising": raising, "echo": echo})
    failed = state(services, "raising")
    assert failed["state"] == "failed" and failed["errors"] == 1
    assert failed["last_error"] == "register_channels: RuntimeError: boom in register_channels"
    assert state(services, "echo")["state"] == "enabled"
    await services.start()
    assert await eventually(lambda: _history(services, "echo"), what="the echo feed")


async def test_a_hanging_register_hook_is_abandoned_after_the_timeout(build: Build) -> None:
    started = time.monotonic()
    try:
        services = build({"hook_timeout": 0.3, "echo": {}}, plugins={"hanging": hanging, "echo": echo})
        assert time.monotonic() - started < 5
        hung = state(services, "hanging")
        assert (
            hung["state"] == "failed"
            and hung["last_error"] == "register_channels: HookTimeout: did not return within 0.3s"
        )
        assert "too_late" not in services.registry.names()
        assert state(services, "echo")["state"] == "enabled"
    finally:
        hanging.RELEASE.set()
    # what the abandoned hook registers once it wakes up is refused
    await eventually(lambda: hanging.REGISTERED_LATE, what="the late registration")
    assert "called after the hook returned" in str(hanging.REGISTERED_LATE[0])
    assert "too_late" not in services.registry.names()


async def test_a_hanging_startup_hook_fails_that_plugin_only(build: Build) -> None:
    services = build(
        {"hook_timeout": 0.2, "echo": {}}, plugins={"hanging_startup": hanging_startup, "echo": echo}
    )
    await services.start()  # returns: the hanging hook was cut off
    hung = state(services, "hanging_startup")
    assert hung["state"] == "failed" and "on_startup: HookTimeout" in hung["last_error"]
    assert hanging_startup.STARTED_FEED == []  # a failed plugin's feeds never start
    assert await eventually(lambda: _history(services, "echo"), what="the healthy plugin's feed")


async def test_a_misspelt_hook_is_caught_when_loading(build: Build) -> None:
    services = build({}, plugins={"misspelt": misspelt})
    found = state(services, "misspelt")
    assert found["state"] == "failed"
    assert "unknown hook(s) register_chanels (misspelt?" in found["last_error"]
    assert services.plugins is not None
    services.plugins.pm.check_pending()  # nothing unknown is left registered


async def test_invalid_messages_are_rejected_counted_and_never_sent(build: Build) -> None:
    services = build({"echo": {"invalid": True}}, plugins={"echo": echo})
    await services.start()
    await eventually(lambda: len(_history(services, "echo")) >= 3, what="three valid messages")
    found = state(services, "echo")
    assert found["messages_rejected"] >= 9 and found["messages_published"] >= 3
    assert found["errors"] == found["messages_rejected"]
    assert "not on a channel of plugin echo" in (found["last_error"] or "") or "Echo" in (
        found["last_error"] or ""
    )
    assert all(m["type"] == "echo" and isinstance(m["text"], str) for m in _history(services, "echo"))
    assert _history(services, "patterns") == []  # never reached another plugin's (or the core's) channel


async def test_a_raising_feed_is_restarted_with_backoff(build: Build) -> None:
    services = build(
        {"restart_delay": 0.01, "restart_max_delay": 0.04, "echo": {"crash": True}}, plugins={"echo": echo}
    )
    await services.start()
    assert services.plugins is not None
    context = services.plugins.records["echo"].context
    assert context is not None
    await eventually(lambda: context.metrics.get("crashy_runs", 0) >= 4, what="four runs of the crashy feed")
    feed = state(services, "echo")["feeds"]["crashy"]
    assert (
        feed["restarts"] >= 3
        and feed["errors"] >= 4
        and feed["last_error"] == "RuntimeError: crashy feed fails"
    )
    assert state(services, "echo")["state"] == "enabled"  # runtime errors count; they do not fail the plugin
    assert len(_history(services, "echo")) >= 1  # its other feed runs on


async def test_authorize_decides_who_may_subscribe(build: Build) -> None:
    services = build({"echo": {"allowed_users": ["ann"]}}, plugins={"echo": echo})
    await services.start()
    sent: dict[str, list[str]] = {"ann": [], "bob": []}

    for user in ("ann", "bob"):
        session = services.streaming.open_session(RecordingTransport(sent[user]), user)
        await send(services.streaming, session, "subscribe", channel="echo")
    await eventually(lambda: any('"history"' in t for t in sent["ann"]) and len(sent["bob"]) >= 2)
    assert any('"subscribed"' in t for t in sent["ann"])
    assert any("Not authorized for channel 'echo'" in t and '"not_authorized"' in t for t in sent["bob"])
    assert not any('"subscribed"' in t for t in sent["bob"])


class Note(Message, tag="note", kw_only=True):
    text: str


def test_channel_specs_accept_patterns_and_check_streams_and_messages() -> None:
    spec = ChannelSpec(name="notes:{symbol}", schema=Note, delivery=Delivery.CONFLATE)
    assert (spec.name, spec.keyed, spec.key_required, spec.topic, spec.message_types) == (
        "notes",
        True,
        True,
        "notes",
        ("note",),
    )
    assert spec.parse_stream("notes:AAPL") == ("AAPL", None)
    for bad in ("notes", "notes:aapl", "notes:A$", "other:AAPL", "notes:AAPL:user:bob"):
        with pytest.raises(ChannelError):
            spec.parse_stream(bad)
    private = ChannelSpec(name="mine", schema=Note, private=True, public_stream=False)
    assert private.parse_stream("mine:user:bob") == (None, "bob")
    with pytest.raises(ChannelError):
        private.parse_stream("mine")
    assert spec.conform({"text": "hi"}) == Note(text="hi")
    with pytest.raises(InvalidMessage, match="Expected `str`, got `int`"):
        spec.conform({"text": 1})
    with pytest.raises(InvalidMessage, match="carries Note messages"):
        spec.conform(Subscribe(channel="x"))


@get("/health")
async def fake_health() -> dict[str, str]:
    return {"status": "hijacked"}


async def test_a_plugin_route_on_a_taken_path_fails_that_plugin_only(build: Build) -> None:
    @hookimpl
    def register_routes(register: Any) -> None:
        register(fake_health)

    services = build({}, plugins={"clash": types.SimpleNamespace(register_routes=register_routes)})
    app = create_app(services=services)
    assert state(services, "clash")["state"] == "failed"
    assert "Handler already registered for path '/health'" in state(services, "clash")["last_error"]
    async with AsyncTestClient(app, base_url="http://legend.localhost") as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
