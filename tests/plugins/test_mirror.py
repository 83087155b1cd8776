"""Keyed and bare streams of a channel are separate (``probe:AAA`` never reaches subscribers of ``probe``),
unless the channel sets ``mirror_keyed``: then each keyed message is published on the bare stream as well,
with that stream's own ``channel`` and ``seq``."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from legend.bootstrap import Services
from legend.domain.channels import ChannelSpec
from legend.plugins import BackplaneUnavailable, Message, MirrorUnavailable, PluginContext, hookimpl
from legend.plugins.state import PluginRecord
from tests.support.backplanes import InterceptedBackplane
from tests.support.streaming import send

from .helpers import Transport, eventually

Build = Callable[..., Services]


class Probe(Message, tag="probe", kw_only=True):
    ticker: str
    value: int


def probe_plugin(**options: Any) -> types.SimpleNamespace:
    @hookimpl
    def register_channels(register: Any) -> None:
        register(ChannelSpec(name="probe", schema=Probe, keyed=True, private=True, **options))

    return types.SimpleNamespace(register_channels=register_channels)


def context(services: Services) -> PluginContext:
    assert services.plugins is not None
    found = services.plugins.records["probe"].context
    assert found is not None
    return found


def record(services: Services) -> PluginRecord:
    assert services.plugins is not None
    return services.plugins.records["probe"]


async def subscribers(services: Services) -> tuple[Transport, Transport]:
    bare, keyed = Transport(), Transport()
    for transport, ticker in ((bare, None), (keyed, "AAA")):
        session = services.streaming.open_session(transport, "bob")
        await send(services.streaming, session, "subscribe", channel="probe", ticker=ticker)
    return bare, keyed


async def test_without_mirroring_the_bare_stream_never_sees_keyed_messages(build: Build) -> None:
    services = build({}, plugins={"probe": probe_plugin()})
    await services.start()
    bare, keyed = await subscribers(services)
    await context(services).publish("probe:AAA", Probe(ticker="AAA", value=1))
    await eventually(lambda: keyed.messages("probe"), what="the keyed subscriber's message")
    assert bare.messages("probe") == []
    assert (await services.backplane.replay("probe", None)).envelopes == []


async def test_a_mirrored_channel_copies_keyed_messages_to_the_bare_stream(build: Build) -> None:
    services = build({}, plugins={"probe": probe_plugin(mirror_keyed=True)})
    await services.start()
    bare, keyed = await subscribers(services)
    publish = context(services).publish
    await publish("probe:AAA", Probe(ticker="AAA", value=1))
    await publish("probe:BBB", Probe(ticker="BBB", value=2))
    await publish("probe", Probe(ticker="-", value=3))  # on the bare stream itself: once
    await publish("probe:AAA:user:bob", Probe(ticker="AAA", value=4))  # private: to bob's bare stream
    await eventually(lambda: len(bare.messages("probe")) == 4, what="four messages on the bare streams")
    assert [(m["channel"], m["value"], m["seq"]) for m in bare.messages("probe")] == [
        ("probe", 1, 1),
        ("probe", 2, 2),
        ("probe", 3, 3),
        ("probe:user:bob", 4, 1),
    ]
    await eventually(lambda: len(keyed.messages("probe")) == 2, what="the keyed subscriber's messages")
    assert [(m["channel"], m["value"], m["seq"]) for m in keyed.messages("probe")] == [
        ("probe:AAA", 1, 1),
        ("probe:AAA:user:bob", 4, 1),
    ]
    assert record(services).messages_published == 4


def test_mirroring_needs_a_bare_stream() -> None:
    with pytest.raises(ValueError, match="mirror_keyed needs keyed=True and key_required=False"):
        ChannelSpec(name="probe:{symbol}", schema=Probe, mirror_keyed=True)
    with pytest.raises(ValueError, match="mirror_keyed needs keyed=True"):
        ChannelSpec(name="probe", schema=Probe, mirror_keyed=True)
    spec = ChannelSpec(name="probe", schema=Probe, keyed=True, private=True, mirror_keyed=True)
    assert spec.mirror_stream("probe:AAA") == "probe"
    assert spec.mirror_stream("probe:AAA:user:bob") == "probe:user:bob"
    assert spec.mirror_stream("probe") is None and spec.mirror_stream("probe:user:bob") is None


async def test_a_plugin_registering_an_impossible_mirror_fails_with_the_reason(build: Build) -> None:
    services = build({}, plugins={"probe": probe_plugin(mirror_keyed=True, key_required=True)})
    assert record(services).state.value == "failed" and "probe" not in services.registry.names()
    assert record(services).last_error == (
        "register_channels: ValueError: channel 'probe': mirror_keyed needs keyed=True and "
        "key_required=False (a bare stream to mirror to)"
    )


class BareStreamDown(InterceptedBackplane):
    """Publishes on every stream but ``probe``, which fails as a Redis outage would."""

    async def before_publish(self, stream: str) -> None:
        if stream == "probe":
            raise BackplaneUnavailable("redis is down")


async def test_a_failed_mirror_says_which_stream_still_misses_the_message(build: Build) -> None:
    services = build({}, plugins={"probe": probe_plugin(mirror_keyed=True)}, backplane=BareStreamDown())
    await services.start()
    with pytest.raises(MirrorUnavailable) as caught:
        await context(services).publish("probe:AAA", Probe(ticker="AAA", value=1))
    assert isinstance(caught.value, BackplaneUnavailable)  # code that retries any outage still does
    assert (caught.value.envelope.stream, caught.value.envelope.seq, caught.value.stream) == (
        "probe:AAA",
        1,
        "probe",
    )
    assert str(caught.value) == "published on probe:AAA but not mirrored to probe: redis is down"
    assert record(services).messages_published == 1  # it did go out on its own stream
    assert services.counters.publish_failures == 1
