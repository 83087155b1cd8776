"""Cluster membership: which instances are alive, what each one's clients watch, the figures each reports,
and leases that one instance at a time holds (the quote poller's poll, alert evaluation, plugin feeds).

The Redis adapter keeps these in Redis, refreshed by a heartbeat, so a dead instance drops out by itself;
the in-memory backplane is a cluster of one that holds every lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

Figures = Callable[[], Mapping[str, int]]  # this instance's connections, subscriptions…, asked when reported


@runtime_checkable
class ClusterMembership(Protocol):
    """This instance's place in the cluster. Every call but ``join`` and ``leave`` raises
    BackplaneUnavailable when the backend is down."""

    async def join(self, figures: Figures) -> None:
        """Take part until ``leave``: stay registered, keep held leases, report ``figures``."""
        ...

    async def leave(self) -> None:
        """Hand back held leases and withdraw interest and figures at once; bounded when the backend is
        down."""
        ...

    async def set_interest(self, tickers: Iterable[str]) -> None:
        """The tickers this instance's clients watch (the quote poller polls the union across instances)."""
        ...

    async def interest(self) -> set[str]:
        """Tickers watched anywhere in the cluster."""
        ...

    async def hold_lease(self, name: str, ttl: float) -> bool:
        """Take or renew a cluster-wide lease; True while this instance holds it."""
        ...

    async def release_lease(self, name: str) -> bool:
        """Give the lease up now if this instance holds it, so that another instance takes it over without
        waiting for it to lapse (a holder that cannot do the work: its database is cut); whether there can
        be another (False for a cluster of one). Raises BackplaneUnavailable; the lease then lapses on its
        own."""
        ...

    def fence(self, name: str) -> tuple[str, int] | None:
        """The fencing token of a held lease, as ``Outgoing.fence`` takes it (name, token): a publish made
        with it is refused once another instance took the lease over. None when the lease is not held, or
        when there is nothing to fence (a cluster of one)."""
        ...

    async def cluster(self, wait: float = 0.05) -> dict[str, object]:
        """Live instances and the sums of their figures, ``{"instances": n, "connections": Σ, …}``; with
        more than one possible, also ``members``: each instance's own figures by its id. Answers within
        ``wait`` seconds whatever the backplane does: then with the last figures read, ``stale: true``,
        their ``age_seconds`` and the ``error`` (BackplaneUnavailable when none were ever read)."""
        ...


@runtime_checkable
class SharedPositions(Protocol):
    """Where a series stands, shared by the instances (the replay provider's position), so that the one
    that takes over polling continues it. The in-memory backplane has none: one process keeps its own."""

    async def advance_position(self, name: str, by_time: bool, own: float) -> float:
        """Move the position saved under ``name`` on, atomically, and return it: by one, or
        (``by_time``) by the seconds since it was last moved; never below the caller's ``own`` position
        (it went on alone while the shared one was out of reach), which is also the start."""
        ...
