"""Prices for plugins: every ``price_update`` reaching this instance, handed to the price callbacks
(``PluginContext.on_price``) of each plugin through a mailbox of its own that keeps the newest price per
ticker, so a slow callback delays only its plugin (it skips to the newest prices), never the quote poller or
the connections."""

from __future__ import annotations

import logging

import msgspec

from legend.domain.events import MessageDelivered
from legend.domain.messages import PriceUpdate
from legend.plugins.callbacks import call_back
from legend.plugins.calls import HookTimeout, Worker
from legend.plugins.context import PluginContext
from legend.plugins.mailboxes import Mailbox, Mailboxes
from legend.plugins.state import PluginRecord
from legend.runtime.logcontext import HOSTILE

log = logging.getLogger("legend.plugins")

_price_decoder = msgspec.json.Decoder(PriceUpdate)


class PluginPrices(Mailboxes["PriceMailbox"]):
    """The plugins' price mailboxes, fed by ``on_delivered`` (subscribed to ``MessageDelivered`` on the
    server's bus): one decode per price, whatever the number of plugins, none while no mailbox is open."""

    def __init__(self) -> None:
        super().__init__(PriceMailbox)

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


class PriceMailbox(Mailbox):
    """Newest price per ticker for one plugin, drained by its own task: a slow callback makes that plugin
    skip intermediate prices, never the quote poller or other plugins wait."""

    kind = "prices"

    def __init__(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        super().__init__(record, context, worker, timeout)
        self.pending: dict[str, PriceUpdate] = {}

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
