"""``service_status``: every connection hears when live delivery degrades and recovers, once per change."""

from __future__ import annotations

import msgspec

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.redis import RedisBackplane
from legend.bootstrap import bootstrap
from legend.domain.channels import ChannelRegistry
from legend.domain.messages import ServiceStatus, encode
from legend.services.streaming.limits import Limits
from legend.services.streaming.service import StreamingService
from legend.services.streaming.service_status import ServiceStatusNotifier
from legend.settings import RedisSettings, Settings
from tests.support.loop import settle
from tests.support.streaming import send
from tests.support.transport import AwaitedTransport, RecordingTransport


def notifier() -> tuple[StreamingService, ServiceStatusNotifier]:
    streaming = StreamingService(InMemoryBackplane(), ChannelRegistry(), FrozenClock(), Limits())
    return streaming, ServiceStatusNotifier(streaming)


def test_the_message_has_the_documented_shape() -> None:
    message = ServiceStatus(status="degraded", component="backplane", reason="r", timestamp="t")
    assert msgspec.json.decode(encode(message)) == {
        "type": "service_status",
        "status": "degraded",
        "component": "backplane",
        "reason": "r",
        "timestamp": "t",
    }


async def test_each_change_reaches_every_session_once() -> None:
    streaming, status = notifier()
    transports = [RecordingTransport() for _ in range(3)]
    for transport in transports:
        streaming.open_session(transport, "u")
    status.backplane_health(True)  # no change: healthy from the start
    status.backplane_health(False)
    status.backplane_health(False)  # no change
    status.backplane_health(True)
    await settle()
    for transport in transports:
        frames = transport.of_type("service_status")
        assert [f["status"] for f in frames] == ["degraded", "ok"]
        assert all(f["component"] == "backplane" and f["reason"] and f["timestamp"] for f in frames)
    assert status.changes == 2


async def test_a_session_opened_while_degraded_is_told_right_after_its_acknowledgement() -> None:
    streaming, status = notifier()
    healthy = RecordingTransport()
    status.greet(streaming.open_session(healthy, "u"))
    status.backplane_health(False)
    late = RecordingTransport()
    status.greet(streaming.open_session(late, "v"))
    await settle()
    assert [f["type"] for f in late.frames] == ["connection", "service_status"]
    assert late.frames[1]["status"] == "degraded"
    assert [f["type"] for f in healthy.frames] == ["connection", "service_status"]


async def test_a_session_whose_socket_is_busy_gets_it_through_its_writer() -> None:
    streaming, status = notifier()
    await streaming.start()
    transport = AwaitedTransport()  # every write waits for the session's writer task
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    status.backplane_health(False)
    await settle()
    assert [f["status"] for f in transport.of_type("service_status")] == ["degraded"]


def test_bootstrap_wires_a_redis_backplane_and_leaves_the_in_memory_one_alone() -> None:
    on_redis = bootstrap(
        Settings(redis=RedisSettings(url="redis://127.0.0.1:1/0")), run_quote_poller=False, plugins={}
    )
    assert isinstance(on_redis.backplane, RedisBackplane)
    assert on_redis.backplane.connection.bus is on_redis.bus  # its health changes go on the server's bus
    transport = RecordingTransport()
    on_redis.streaming.open_session(transport, "u")
    on_redis.backplane.connection.note_health()  # not subscribed yet: the link reports itself down
    assert on_redis.status.degraded and on_redis.status.changes == 1
    assert [f["status"] for f in transport.of_type("service_status")] == ["degraded"]
    in_memory = bootstrap(Settings(), run_quote_poller=False, plugins={})
    assert isinstance(in_memory.backplane, InMemoryBackplane)  # it never degrades: nothing announces
    assert not in_memory.status.degraded and in_memory.status.changes == 0
