"""Prices for plugins: every ``price_update`` reaching this instance, handed to the price callbacks
(``PluginContext.on_price``) of each plugin through a mailbox of its own that keeps the newest price per
ticker, so a slow callback delays only its plugin (it skips to the newest prices), never the quote poller or
the connections."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from legend.domain.events import MessageDelivered
from legend.domain.messages import PriceUpdate
from legend.plugins.callbacks import call_back
from legend.plugins.calls import HookTimeout, Worker
from legend.plugins.context import PluginContext
from legend.plugins.state import PluginRecord
from legend.runtime.logcontext import HOSTILE
from legend.runtime.supervisor import Supervised

log = logging.getLogger("legend.plugins")

_price_decoder = msgspec.json.Decoder(PriceUpdate)


class PluginPrices:
    """The plugins' price mailboxes, fed by ``on_delivered`` (subscribed to ``MessageDelivered`` on the
    server's bus): one decode per price, whatever the number of plugins, none while no mailbox is open."""

    def __init__(self) -> None:
        self._mailboxes: dict[str, PriceMailbox] = {}

    def open(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        """Give the plugin its mailbox (once), started on the running loop."""
        if record.name not in self._mailboxes:
            mailbox = PriceMailbox(record, context, worker, timeout)
            self._mailboxes[record.name] = mailbox
            mailbox.start()

    def on_delivered(self, event: MessageDelivered) -> None:
        """An envelope reached this instance: a price goes to every open mailbox."""
        envelope = event.envelope
        if envelope.type != "price_update" or not self._mailboxes:
            return
        try:
            price = _price_decoder.decode(envelope.text)
        except msgspec.DecodeError:
            log.warning("undecodable price envelope on %s", envelope.stream, extra=HOSTILE)
            return
        for mailbox in self._mailboxes.values():
            mailbox.put(price)

    async def stop(self) -> None:
        """Stop every mailbox's task; mailboxes opened again are fed again."""
        for mailbox in self._mailboxes.values():
            await mailbox.stop()
        self._mailboxes.clear()


class PriceMailbox:
    """Newest price per ticker for one plugin, drained by its own task: a slow callback makes that plugin
    skip intermediate prices, never the quote poller or other plugins wait."""

    def __init__(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        self.record = record
        self.context = context
        self.worker = worker
        self.timeout = timeout
        self.pending: dict[str, PriceUpdate] = {}
        self.event = asyncio.Event()
        self.task: Supervised | None = None

    def start(self) -> None:
        self.task = self.context.runtime.supervisor.start(f"plugin {self.record.name}: prices", self._run)

    async def stop(self) -> None:
        if self.task is not None:
            await self.task.stop()
            self.task = None

    def put(self, price: PriceUpdate) -> None:
        if self.record.active:
            self.pending[price.ticker] = price
            self.event.set()

    async def _run(self) -> None:
        record = self.record
        while True:
            await self.event.wait()
            self.event.clear()
            batch, self.pending = self.pending, {}
            for price in batch.values():
                for callback in list(self.context.price_callbacks):
                    if not record.active:
                        return
                    try:
                        await call_back(record, self.worker, "on_price", callback, (price,), self.timeout)
                    except HookTimeout as exc:
                        record.fail("on_price", exc)
                        return
                    except Exception as exc:
                        record.error_repeating("on_price", exc, self.context.clock.monotonic())
