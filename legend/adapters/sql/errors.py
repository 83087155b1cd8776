"""The error of the SQL adapters, in a module of its own so that both the database and the migrations
raise it without importing each other (the database runs the migrations at start-up)."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """The database cannot be used as configured (wrong URL, schema not migrated); the message says why."""
