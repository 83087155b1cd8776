"""The alert delivery queue on SQLite and PostgreSQL: each trigger planned once per destination of its
rule's channels, handed to one sender at a time, retried on the schedule, given up after a day, resumed
after a sender's crash, and every attempt accounted for. The channels' own senders (webhook, Web Push,
e-mail) are tested against real receivers in tests/notify; here a sender records what it is handed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.sql import Database
from legend.adapters.sql.notifications import SqlAlchemyNotificationRepository
from legend.domain.alert_rules import AlertKind, Rearm, RuleSpec, Session
from legend.domain.notifications import (
    AlertPayload,
    Channel,
    Destination,
    Outcome,
    SendResult,
    after_attempt,
)
from legend.domain.prices import LoggedPrice
from legend.services.notifications.service import NotificationService

from .conftest import alerting_service


class Recording:
    """A sender that answers what it is told to, in turn, and remembers what it was handed."""

    def __init__(self, channel: Channel, *answers: Outcome) -> None:
        self.channel = channel
        self.answers = list(answers)
        self.sent: list[tuple[int, str]] = []  # (destination id, alert id)

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult:
        self.sent.append((destination.id, payload.alert_id))
        outcome = self.answers.pop(0) if self.answers else Outcome.DELIVERED
        return SendResult(
            outcome=outcome, error=None if outcome is Outcome.DELIVERED else f"answered {outcome}"
        )

    async def close(self) -> None:
        pass


SPEC = RuleSpec(
    ticker="AAPL", kind=AlertKind.PRICE_ABOVE, threshold=100.0, rearm=Rearm.RECROSS, session=Session.ANY
)


async def fire(database: Database, clock: FrozenClock, spec: RuleSpec = SPEC, user: str = "alice") -> str:
    """A rule of ``user`` fired once; the trigger's alert id."""
    alerting = alerting_service(database, clock)
    await alerting.start()
    rule = await alerting.create_rule(user, spec)
    await alerting.observe(LoggedPrice(ticker=spec.ticker, price=99.0))
    [event] = await alerting.observe(LoggedPrice(ticker=spec.ticker, price=101.0))
    await alerting.stop()
    assert event.rule_id == rule.id
    return event.key


async def test_a_trigger_goes_once_to_every_destination_of_its_owner(
    database: Database, clock: FrozenClock
) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    now = clock.now()
    hook = await repository.add("webhook", "alice", {"url": "https://hooks.example/a", "secret": "s"}, now)
    mail = await repository.add("email", "alice", {"address": "alice@example.com"}, now)
    await repository.add("email", "bob", {"address": "bob@example.com"}, now)  # another user's: not sent to
    key = await fire(database, clock)
    webhook, email = Recording("webhook"), Recording("email")
    service = NotificationService(repository, {"webhook": webhook, "email": email}, clock, instance_id="a")
    await service.round()
    await service.round()  # nothing more: planned once, delivered once
    assert webhook.sent == [(hook.id, key)] and email.sent == [(mail.id, key)]
    [event_id] = (await repository.deliveries(range(1, 100))).keys()
    states = (await repository.deliveries([event_id]))[event_id]
    assert [(s.channel, s.state, s.attempts) for s in states] == [
        ("webhook", "delivered", 1),
        ("email", "delivered", 1),
    ]


async def test_a_rule_s_channels_choose_its_destinations(database: Database, clock: FrozenClock) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    now = clock.now()
    await repository.add("webhook", "alice", {"url": "https://hooks.example/a", "secret": "s"}, now)
    await repository.add("email", "alice", {"address": "alice@example.com"}, now)
    await fire(database, clock, msgspec.structs.replace(SPEC, notify=("email",)))
    webhook, email = Recording("webhook"), Recording("email")
    await NotificationService(
        repository, {"webhook": webhook, "email": email}, clock, instance_id="a"
    ).round()
    assert webhook.sent == [] and len(email.sent) == 1


async def test_retries_follow_the_schedule_then_deliver_and_give_up_after_a_day(
    database: Database, clock: FrozenClock
) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    await repository.add("webhook", "alice", {"url": "https://hooks.example/a", "secret": "s"}, clock.now())
    await fire(database, clock)
    webhook = Recording("webhook", Outcome.RETRY, Outcome.RETRY)
    service = NotificationService(repository, {"webhook": webhook}, clock, instance_id="a")
    await service.round()
    [states] = (await repository.deliveries(range(1, 100))).values()
    assert (states[0].state, states[0].attempts, states[0].error) == ("retrying", 1, "answered retry")
    assert states[0].next_attempt_at is not None and states[0].next_attempt_at > clock.now()
    await service.round()  # not due yet
    assert len(webhook.sent) == 1
    clock.advance(3600)
    await service.round()
    clock.advance(3600)
    await service.round()
    [states] = (await repository.deliveries(range(1, 100))).values()
    assert (states[0].state, states[0].attempts, len(webhook.sent)) == ("delivered", 3, 3)


def test_a_delivery_still_failing_a_day_after_its_trigger_is_given_up(clock: FrozenClock) -> None:
    from legend.domain.notifications import Delivery

    payload = AlertPayload(
        alert_id="1:1",
        rule_id=1,
        ticker="AAPL",
        alert_type="price_above",
        threshold=1.0,
        value=2.0,
        trigger_price=1.0,
        current_price=2.0,
        message="m",
        triggered_at=clock.now(),
    )
    delivery = Delivery(
        id=1,
        channel="webhook",
        destination_id=1,
        attempts=9,
        destination=None,
        payload=payload,
        user_id="alice",
    )
    soon = after_attempt(
        delivery, SendResult(outcome=Outcome.RETRY, error="503"), clock.now() + timedelta(hours=1)
    )
    assert soon.state == "retrying"
    late = after_attempt(
        delivery, SendResult(outcome=Outcome.RETRY, error="503"), clock.now() + timedelta(hours=24)
    )
    assert (late.state, late.error) == ("failed", "gave up after 24 h: 503")


async def test_a_sender_that_dies_mid_send_is_taken_over_once_its_claim_runs_out(
    database: Database, clock: FrozenClock
) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    await repository.add("webhook", "alice", {"url": "https://hooks.example/a", "secret": "s"}, clock.now())
    key = await fire(database, clock)

    class Hangs(Recording):
        async def send(self, destination: Destination, payload: AlertPayload) -> SendResult:
            await super().send(destination, payload)
            await asyncio.Event().wait()  # the process dies here, mid-send
            raise AssertionError

    dying = NotificationService(repository, {"webhook": Hangs("webhook")}, clock, instance_id="a")
    task = asyncio.create_task(dying.round())
    await asyncio.sleep(0.3)
    task.cancel()
    other = Recording("webhook")
    survivor = NotificationService(repository, {"webhook": other}, clock, instance_id="b")
    await survivor.round()
    assert other.sent == []  # claimed by the dead sender: not yet
    clock.advance(61)
    await survivor.round()
    assert [alert_id for _, alert_id in other.sent] == [key]  # once; the receiver tells a repeat by the id
    await survivor.round()
    assert len(other.sent) == 1


async def test_destinations_are_per_user(database: Database, clock: FrozenClock) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    hook = await repository.add(
        "webhook", "alice", {"url": "https://hooks.example/a", "secret": "s"}, clock.now()
    )
    assert await repository.destination("webhook", "bob", hook.id) is None
    assert await repository.remove("webhook", "bob", hook.id) is False
    assert [d.id for d in await repository.destinations("alice")] == [hook.id]
    assert await repository.remove("webhook", "alice", hook.id) is True
    assert await repository.destinations("alice") == []


async def test_the_same_push_endpoint_twice_is_one_subscription(
    database: Database, clock: FrozenClock
) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    fields = {"endpoint": "https://push.example/x", "p256dh": "key", "auth": "secret"}
    first = await repository.add("push", "alice", fields, clock.now())
    again = await repository.add("push", "alice", fields, clock.now())
    assert first.id == again.id


@pytest.mark.parametrize("racers", [2])
async def test_the_server_key_is_made_once(database: Database, clock: FrozenClock, racers: int) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    keys = await asyncio.gather(
        *(repository.key("vapid", f"made-by-{n}", clock.now()) for n in range(racers))
    )
    assert len(set(keys)) == 1 and await repository.key("vapid", "later", clock.now()) == keys[0]


async def test_a_dead_receiver_does_not_delay_another_user_s_delivery(
    database: Database, clock: FrozenClock
) -> None:
    from legend.adapters.notify.webhook import WebhookSender
    from tests.support.webhook_receiver import WebhookReceiver, delayed, status

    repository = SqlAlchemyNotificationRepository(database)
    with WebhookReceiver(delayed(3.0, status(200))) as dead, WebhookReceiver(status(200)) as alive:
        await repository.add("webhook", "alice", {"url": dead.url(), "secret": "s" * 16}, clock.now())
        await repository.add("webhook", "bob", {"url": alive.url(), "secret": "s" * 16}, clock.now())
        await fire(database, clock, user="alice")
        await fire(database, clock, msgspec.structs.replace(SPEC, ticker="MSFT"), user="bob")
        sender = WebhookSender(["127.0.0.0/8"], allow_http=True, timeout=1.0)
        service = NotificationService(repository, {"webhook": sender}, clock, instance_id="a")
        started = asyncio.get_running_loop().time()
        round_ = asyncio.create_task(service.round())
        while not alive.received and asyncio.get_running_loop().time() - started < 5:
            await asyncio.sleep(0.02)
        assert alive.received and asyncio.get_running_loop().time() - started < 0.9  # before alice's timeout
        await round_
        states = await repository.deliveries(range(1, 100))
        assert sorted(s.state for group in states.values() for s in group) == ["delivered", "retrying"]
        await sender.close()


async def test_a_push_subscription_the_push_service_no_longer_knows_is_removed(
    database: Database, clock: FrozenClock
) -> None:
    repository = SqlAlchemyNotificationRepository(database)
    fields = {"endpoint": "https://push.example/gone", "p256dh": "key", "auth": "secret"}
    subscription = await repository.add("push", "alice", fields, clock.now())
    await fire(database, clock)
    push = Recording("push", Outcome.REMOVED)  # the push service answered 410
    await NotificationService(repository, {"push": push}, clock, instance_id="a").round()
    assert push.sent == [(subscription.id, "1:1")]
    assert await repository.destinations("alice") == []  # the subscription is gone
    [states] = (await repository.deliveries(range(1, 100))).values()
    assert [(s.channel, s.state) for s in states] == [("push", "removed")]
