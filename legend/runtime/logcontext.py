"""Which connection the running code works for: set in each connection's tasks, read by the log setup
(``adapters/logs.py``) so that every line logged on a connection's behalf carries its id."""

from __future__ import annotations

from contextvars import ContextVar

connection_id: ContextVar[str | None] = ContextVar("legend_connection_id", default=None)

# ``extra`` for a log line that a client's input can trigger at will: the log setup lets each such line
# through at most once a second, however often the client repeats the input.
HOSTILE = {"hostile": True}
