"""A small persistent key-value store per plugin (``PluginContext.store``): cursors, ETags, seen ids.

Values are anything msgspec encodes as JSON. The SQL adapter (``SqlAlchemyPluginStateRepository``) keeps
them in the ``plugin_state`` table of the server's database; ``InMemoryPluginStateRepository`` serves a
server built without a database (they are then lost at exit).
"""

from __future__ import annotations

from typing import Any, Protocol


class PluginStateRepository(Protocol):
    """Values by (plugin, key)."""

    async def get(self, plugin: str, key: str) -> Any | None:
        """The stored value, or None."""
        ...

    async def put(self, plugin: str, key: str, value: Any) -> None:
        """Store (insert or replace) a value."""
        ...

    async def delete(self, plugin: str, key: str) -> bool:
        """Forget a value; False when there was none."""
        ...


class InMemoryPluginStateRepository:
    """PluginStateRepository in a dictionary (values are copied through JSON, as the database would)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], bytes] = {}

    async def get(self, plugin: str, key: str) -> Any | None:
        import msgspec

        raw = self._values.get((plugin, key))
        return None if raw is None else msgspec.json.decode(raw)

    async def put(self, plugin: str, key: str, value: Any) -> None:
        import msgspec

        self._values[(plugin, key)] = msgspec.json.encode(value)

    async def delete(self, plugin: str, key: str) -> bool:
        return self._values.pop((plugin, key), None) is not None


class PluginStore:
    """One plugin's view of the store: ``await store.get("etag")``, ``await store.put("etag", "abc")``."""

    def __init__(self, repository: PluginStateRepository, plugin: str) -> None:
        self._repository = repository
        self._plugin = plugin

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        value = await self._repository.get(self._plugin, key)
        return default if value is None else value

    async def put(self, key: str, value: Any) -> None:
        """Store a JSON-encodable value under ``key`` (keys up to 200 characters)."""
        if not key or len(key) > 200:
            raise ValueError("store keys are 1 to 200 characters")
        await self._repository.put(self._plugin, key, value)

    async def delete(self, key: str) -> bool:
        """Forget ``key``."""
        return await self._repository.delete(self._plugin, key)
