"""How many connections each user and each address holds: across the cluster when on Redis."""

from __future__ import annotations

from typing import Literal, Protocol


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
