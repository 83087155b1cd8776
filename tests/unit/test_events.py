"""The in-process event bus: handlers by exact event type, in subscription order; plain ones at once, async
ones as tasks (``publish``) or awaited (``emit``); a handler that raises is logged and the others run."""

from __future__ import annotations

import asyncio
import logging

import pytest

from legend.domain.events import BackplaneHealthChanged, TickerWatched
from legend.runtime.message_bus import MessageBus
from tests.support.loop import settle


class Louder(TickerWatched):
    """A subclass is an event type of its own."""


def test_plain_handlers_run_at_once_in_order_for_their_exact_type() -> None:
    bus = MessageBus()
    heard: list[str] = []
    bus.subscribe(TickerWatched, lambda event: heard.append(f"first {event.ticker}"))
    bus.subscribe(TickerWatched, lambda event: heard.append(f"second {event.ticker}"))
    bus.subscribe(BackplaneHealthChanged, lambda event: heard.append(f"health {event.ok}"))
    bus.publish(TickerWatched("AAPL"))
    assert heard == ["first AAPL", "second AAPL"]
    bus.publish(Louder("MSFT"))  # nobody subscribed to the subclass
    bus.publish(BackplaneHealthChanged(False))
    assert heard == ["first AAPL", "second AAPL", "health False"]


def test_wants_says_whether_anyone_listens() -> None:
    bus = MessageBus()
    assert not bus.wants(TickerWatched)
    bus.publish(TickerWatched("AAPL"))  # nobody listens: nothing happens
    bus.subscribe(TickerWatched, lambda event: None)
    assert bus.wants(TickerWatched) and not bus.wants(BackplaneHealthChanged)
    assert len(bus.handlers(TickerWatched)) == 1


def test_a_handler_that_raises_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = MessageBus()
    heard: list[str] = []

    def broken(event: TickerWatched) -> None:
        raise RuntimeError("handler exploded")

    bus.subscribe(TickerWatched, broken)
    bus.subscribe(TickerWatched, lambda event: heard.append(event.ticker))
    with caplog.at_level(logging.ERROR, logger="legend.events"):
        bus.publish(TickerWatched("AAPL"))
    assert heard == ["AAPL"]
    assert "TickerWatched failed" in caplog.text and "handler exploded" in caplog.text


async def test_publish_runs_an_async_handler_as_a_task_and_logs_its_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MessageBus()
    heard: list[str] = []

    async def listen(event: TickerWatched) -> None:
        await asyncio.sleep(0)
        heard.append(event.ticker)

    async def broken(event: TickerWatched) -> None:
        raise RuntimeError("async handler exploded")

    bus.subscribe(TickerWatched, listen)
    bus.subscribe(TickerWatched, broken)
    bus.subscribe(TickerWatched, lambda event: heard.append(f"plain {event.ticker}"))
    with caplog.at_level(logging.ERROR, logger="legend.events"):
        bus.publish(TickerWatched("AAPL"))
        assert heard == ["plain AAPL"]  # publish never waits for a coroutine
        await settle()
    assert heard == ["plain AAPL", "AAPL"]
    assert "async handler exploded" in caplog.text


def test_an_async_handler_without_an_event_loop_is_logged_not_left_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MessageBus()

    async def listen(event: TickerWatched) -> None:
        raise AssertionError("never runs")

    bus.subscribe(TickerWatched, listen)
    with caplog.at_level(logging.ERROR, logger="legend.events"):
        bus.publish(TickerWatched("AAPL"))
    assert "no event loop runs" in caplog.text
