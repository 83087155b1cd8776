"""The price log: every price the cluster publishes, in order, kept until alert evaluation has read it.

A price enters the log in the same atomic step that sequences and publishes it (the Redis backplane's
publish script; the in-memory backplane's publish), whoever published it: an admin broadcast on any
instance, the quote poller, a plugin, or another program's message in the specification's format. Rule
changes enter it too, so that the evaluator sees a rule created or changed between two prices exactly
between them. The evaluator remembers how far it has read in the database, in the same transaction as
what the prices did to the rules: a crash anywhere replays from there, and nothing fires twice.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal, Protocol, runtime_checkable

import msgspec

LogKind = Literal["price", "rule", "status"]


class LogEntry(msgspec.Struct, frozen=True):
    """One entry: a price (``data`` is its wire text), a rule change (``data`` is the rule id) or a market
    status (``data`` is its wire text: a halt holds every rule)."""

    id: str  # the position of the entry: opaque, ordered within one log
    at: float  # epoch seconds when the entry was appended (the log's clock)
    kind: LogKind
    data: str


class LogRead(msgspec.Struct, frozen=True):
    """What a read returned; ``missed`` when entries the read asked for were already trimmed."""

    entries: list[LogEntry]
    missed: bool = False


@runtime_checkable
class PriceLog(Protocol):
    """The ordered, bounded log of prices, rule changes and market statuses that alert evaluation
    consumes."""

    name: str  # positions belong to one log: a position saved for another name is not valid here
    durable: bool  # outlives this process (Redis): positions are worth storing

    async def read(self, after: str | None, count: int, wait: float) -> LogRead:
        """Up to ``count`` entries after position ``after`` (None: the start of the log), waiting up
        to ``wait`` seconds for the first; raises BackplaneUnavailable."""
        ...

    async def read_back(self, until: str | None, since: float, limit: int) -> LogRead:
        """The entries appended at or after epoch second ``since`` up to and including position ``until``
        (None: the newest), oldest first; when more than ``limit`` qualify, the newest ``limit`` of them.
        For a reader about to continue from ``until`` that wants what came just before it (alert
        evaluation warming up at a takeover).

        ``missed`` when the log no longer reaches back to ``since``: entries were trimmed and the oldest
        one left was appended at or after ``since``, so some since then may be gone and the caller did not
        get everything. (A ``limit`` that cut the answer short is not ``missed``: ``limit`` entries came.)
        Raises ValueError for a position that is not of this log's form or a ``limit`` below 1, and
        BackplaneUnavailable."""
        ...

    async def end(self) -> str:
        """The position of the newest entry (or of the start, when empty); raises BackplaneUnavailable."""
        ...

    async def note_rule_change(self, rule_id: int) -> None:
        """Append a rule change; raises BackplaneUnavailable."""
        ...


class LocalPriceLog(PriceLog, Protocol):
    """The price log the in-memory backplane keeps for its one process: in memory, or in the database
    (durable: a crash loses no price whose publish was answered)."""

    def append(self, kind: LogKind, data: str) -> Awaitable[None] | None:
        """Append an entry, in call order. None when it is in the log already; otherwise an awaitable that
        completes once the entry is durable, or raises BackplaneUnavailable when it could not be stored
        (then it is not in the log)."""
        ...

    async def start(self) -> None:
        """Learn where the log stands (a durable one: its stored entries); before the first read."""
        ...

    async def stop(self) -> None:
        """Finish the appends under way (bounded)."""
        ...

    def status(self) -> dict[str, object]:
        """Figures for stats: at least ``{"kind": ..., "durable": bool}``."""
        ...
