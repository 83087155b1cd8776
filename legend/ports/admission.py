"""How many connections each user and each address holds: across the cluster when on Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol, runtime_checkable


@runtime_checkable
class ConnectionRegistry(Protocol):
    """The connections open now, per user and per client address."""

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        """Register a connection unless its user or its address already holds the maximum (0: no
        maximum): None when admitted, else which limit it hit; raises BackplaneUnavailable."""
        ...

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        """Forget a connection admitted before; raises BackplaneUnavailable."""
        ...

    async def expect_reconnects(self, addresses: Mapping[str, int], ttl: float) -> None:
        """A draining instance closed ``addresses[a]`` connections of each address ``a``: that many may
        come back (anywhere in the cluster) within ``ttl`` seconds without counting as new connections
        against the connect rate; raises BackplaneUnavailable."""
        ...

    async def take_reconnect(self, address: str) -> bool:
        """Spend one expected reconnect of ``address``: False when none is left (or they expired);
        raises BackplaneUnavailable."""
        ...
