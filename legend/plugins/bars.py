"""Closed bars for plugins: every ``BarsClosed`` the bar builder announces (on the one instance that holds
the ``bars`` lease), handed to the ``on_bars`` callbacks of each plugin through a mailbox of its own, so a
slow callback delays only its plugin, never the builder. Unlike prices, nothing is conflated: each closed
bar reaches each callback once, in order (a backlog past ``MAX_PENDING`` bars drops the oldest, counted)."""

from __future__ import annotations

from legend.domain.bars import Bar
from legend.domain.events import BarsClosed
from legend.plugins.callbacks import call_back
from legend.plugins.calls import HookTimeout, Worker
from legend.plugins.context import PluginContext
from legend.plugins.mailboxes import Mailbox, Mailboxes
from legend.plugins.state import PluginRecord

MAX_PENDING = 100_000  # bars waiting for one plugin's callbacks; beyond, the oldest are dropped (counted)


class PluginBars(Mailboxes["BarMailbox"]):
    """The plugins' bar mailboxes, fed by ``on_closed`` (subscribed to ``BarsClosed`` on the server's bus)."""

    def __init__(self) -> None:
        super().__init__(BarMailbox)

    def on_closed(self, event: BarsClosed) -> None:
        """Bars closed on this instance (it builds them): to every open mailbox."""
        for mailbox in self._mailboxes.values():
            mailbox.put(event.bars)


class BarMailbox(Mailbox):
    """The closed bars one plugin has not been handed yet, drained by its own task: each round hands every
    callback all the bars waiting (oldest first) in one call."""

    kind = "bars"

    def __init__(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        super().__init__(record, context, worker, timeout)
        self.pending: list[Bar] = []
        self.dropped = 0

    def put(self, bars: tuple[Bar, ...]) -> None:
        if not self.record.active:
            return
        self.pending.extend(bars)
        excess = len(self.pending) - MAX_PENDING
        if excess > 0:
            del self.pending[:excess]
            self.dropped += excess
            self.record.error_repeating(
                "on_bars",
                f"{self.dropped} closed bars dropped: the callbacks fall behind",
                self.context.clock.monotonic(),
            )
        self.event.set()

    async def _run(self) -> None:
        record = self.record
        while True:
            await self.event.wait()
            self.event.clear()
            batch, self.pending = self.pending, []
            for callback in list(self.context.bar_callbacks):
                if not record.active:
                    return
                try:
                    await call_back(record, self.worker, "on_bars", callback, (list(batch),), self.timeout)
                except HookTimeout as exc:
                    record.fail("on_bars", exc)
                    return
                except Exception as exc:
                    record.error_repeating("on_bars", exc, self.context.clock.monotonic())
