"""What the plugins' price and bar mailboxes share: one mailbox per plugin, drained by a task of its own
(so a slow callback delays only its plugin), opened once, stopped together (``prices``, ``bars``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from legend.plugins.calls import Worker
from legend.plugins.context import PluginContext
from legend.plugins.state import PluginRecord
from legend.runtime.supervisor import Supervised


class Mailbox:
    """What one plugin has not been handed yet, drained by ``_run`` in a supervised task named after
    ``kind`` (``plugin news: prices``)."""

    kind = "mailbox"

    def __init__(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        self.record = record
        self.context = context
        self.worker = worker
        self.timeout = timeout
        self.event = asyncio.Event()
        self.task: Supervised | None = None

    def start(self) -> None:
        self.task = self.context.runtime.supervisor.start(
            f"plugin {self.record.name}: {self.kind}", self._run
        )

    async def stop(self) -> None:
        if self.task is not None:
            await self.task.stop()
            self.task = None

    async def _run(self) -> None:
        raise NotImplementedError


M = TypeVar("M", bound=Mailbox)


class Mailboxes(Generic[M]):
    """Every plugin's mailbox of one kind (made by ``mailbox``), by plugin name."""

    def __init__(self, mailbox: Callable[[PluginRecord, PluginContext, Worker, float], M]) -> None:
        self.mailbox = mailbox
        self._mailboxes: dict[str, M] = {}

    def open(self, record: PluginRecord, context: PluginContext, worker: Worker, timeout: float) -> None:
        """Give the plugin its mailbox (once), started on the running loop."""
        if record.name not in self._mailboxes:
            mailbox = self.mailbox(record, context, worker, timeout)
            self._mailboxes[record.name] = mailbox
            mailbox.start()

    async def stop(self) -> None:
        """Stop every mailbox's task; mailboxes opened again are fed again."""
        for mailbox in self._mailboxes.values():
            await mailbox.stop()
        self._mailboxes.clear()
