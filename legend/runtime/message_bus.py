"""The one small in-process bus: it hands each event to the handlers subscribed to its exact type.

Objects that announce something (the subscription index, the fan-out, the Redis connection) are built with
the bus and publish events; the composition root (``legend.bootstrap``) subscribes the handlers of the
objects that react (the quote poller, the service status notifier, the plugins), so that neither has to be
wired into the other after construction. The event types are the model's (``legend.domain.events``);
the bus is runtime machinery (it spawns tasks), so it lives here and knows no event type.

- ``publish(event)`` never waits: a plain handler runs at once, in subscription order; a coroutine
  function's coroutine becomes a task of its own on the running loop.

A handler that raises is logged and the others still run: a listener never stops what announced the event.
``publish`` of an event nobody subscribed to is one dictionary look-up, and ``wants`` lets a hot path skip
building the event when nobody listens. The fan-out publishes ``MessageDelivered`` for every message, once,
before the loop over its connections: a bus dispatch costs per message, never per connection. (The server
always subscribes the plugins' price mailboxes, which drop what is not a price after one type check.)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("legend.events")

E = TypeVar("E")
Handler = Callable[[E], Awaitable[None] | None]


class MessageBus:
    """Event types to their handlers, subscribed at composition time."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, event_type: type[E], handler: Handler[E]) -> None:
        """Call ``handler(event)`` for every event of exactly ``event_type``, after those subscribed before."""
        self._handlers.setdefault(event_type, []).append(handler)

    def wants(self, event_type: type[Any]) -> bool:
        """Whether any handler is subscribed to ``event_type`` (a hot path skips building the event when not)."""
        return event_type in self._handlers

    def handlers(self, event_type: type[Any]) -> list[Callable[[Any], Any]]:
        """The handlers of ``event_type``, in order (a copy)."""
        return list(self._handlers.get(event_type, ()))

    def publish(self, event: object) -> None:
        """Hand ``event`` to its handlers without waiting (see the module docstring)."""
        handlers = self._handlers.get(type(event))
        if not handlers:
            return
        for handler in handlers:
            try:
                outcome = handler(event)
            except Exception:
                log.exception("handler %r of %s failed", handler, type(event).__name__)
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                self._spawn(outcome, handler, event)

    def _spawn(self, awaitable: Awaitable[Any], handler: object, event: object) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            log.error("handler %r of %s is async, but no event loop runs", handler, type(event).__name__)
            return

        async def run() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("handler %r of %s failed", handler, type(event).__name__)

        task = loop.create_task(run(), name=f"event {type(event).__name__}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
