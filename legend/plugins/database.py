"""``SqlDatabase``: the server's database as a plugin's repositories use it (``context.database``). Apart
from ``storage`` (which checks what ``register_storage`` declares, for the manager) so that the context
needs nothing of the plugin machinery."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class SqlDatabase(Protocol):
    """The server's database as a plugin uses it (``context.database``): SQLAlchemy async connections, each
    in a transaction, on SQLite or PostgreSQL."""

    backend: str  # "sqlite" or "postgresql"

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a read transaction (rolled back at the end)."""
        ...

    def write(self, lock: str | None = None) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a write transaction, committed when the block ends without error. ``lock`` names
        what concurrent writers must not do at once (a PostgreSQL advisory lock until the commit; SQLite
        writes one at a time anyway): ``f"myplugin:{user_id}"``."""
        ...
