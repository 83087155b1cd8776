"""Who may open another connection: a per-address connection rate, and at most so many connections per
user and per address (counted across the cluster by the connection registry).

A reconnect loop or a script opening thousands of sockets from one address is refused before it costs
memory, descriptors and fan-out time. The rate is kept by this instance (a client behind a load balancer
spread over N instances gets N times the rate); the maxima are the cluster's. When the registry cannot
be asked (Redis down) connections are admitted: a backplane outage must not lock every trader out.

A deploy is not a flood: an instance that drains announces, per address, how many connections it closes
(``expect_reconnects``), and that many reconnects from the address are admitted past an empty rate bucket
by whichever instance they reach, within the drain's reconnect window. An office of 300 traders behind one
NAT address therefore moves to the other instances without a 4429, while a reconnect loop that no drain
announced still meets the rate (docs/scaling.md, "Deploys").

A restart storm is not a flood either: thousands of clients coming back at once would each ask the
registry, and those questions would fill the backplane's connection pool and time out there, holding up
the resumes (history reads) and publishes that share it. At most ``MAX_CHECKS`` registry questions are
under way at once; a connection that waits ``CHECK_WAIT`` for its turn is admitted unchecked, as it
would be after a timeout (docs/scaling.md, "A restart storm").
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping

import msgspec

from legend.domain import closecodes
from legend.domain.stats import Counters
from legend.domain.throttle import TokenBucket
from legend.ports.admission import ConnectionRegistry
from legend.ports.backplane import BackplaneUnavailable

log = logging.getLogger("legend.streaming")

MAX_ADDRESSES = 100_000  # per-address rate buckets kept, least recently used forgotten first
ANNOUNCE_TIMEOUT = 1.0  # seconds a drain waits to announce its reconnects before it closes anyway
MAX_CHECKS = 16  # registry questions under way at once (of redis.max_connections, default 50)
CHECK_WAIT = 2.0  # seconds a connection waits for its turn to ask before it is admitted unchecked


class AdmissionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """``[realtime]`` connection limits; 0 turns a limit off."""

    max_connections_per_user: int = 20
    max_connections_per_ip: int = 500
    connect_rate_per_ip: float = 10.0  # new connections per second from one address, sustained
    connect_burst_per_ip: int = 50


class Refusal(msgspec.Struct, frozen=True):
    """Why a connection is closed right after its handshake (close code 4429)."""

    reason: str
    code: int = closecodes.TOO_MANY_CONNECTIONS


class Admission:
    """The connection limits of one instance (see the module docstring)."""

    def __init__(self, registry: ConnectionRegistry, limits: AdmissionLimits, counters: Counters) -> None:
        self.registry = registry
        self.limits = limits
        self.counters = counters
        self._rates: OrderedDict[str, TokenBucket] = OrderedDict()
        self._checks = asyncio.Semaphore(MAX_CHECKS)
        self.unchecked = 0  # connections admitted without the cluster's maxima: no turn within CHECK_WAIT

    async def admit(self, connection_id: str, user_id: str, address: str, now: float) -> Refusal | None:
        """None when the connection may go on (it is then registered until ``release``)."""
        limits = self.limits
        if limits.connect_rate_per_ip > 0 and not self._take(address, now):
            if not await self._expected(address):
                self.counters.refused_connect_rate += 1
                return Refusal(
                    "too many new connections from your address: "
                    f"at most {limits.connect_rate_per_ip:g} a second"
                )
            self.counters.drain_reconnects += 1
        try:
            async with asyncio.timeout(CHECK_WAIT):
                await self._checks.acquire()
        except TimeoutError:
            self.unchecked += 1
            if self.unchecked % 1000 == 1:
                log.warning(
                    "connection limits not checked for %d connections so far (too many arriving at once): "
                    "admitted",
                    self.unchecked,
                )
            return None
        try:
            over = await self.registry.admit(
                connection_id,
                user_id,
                address,
                limits.max_connections_per_user,
                limits.max_connections_per_ip,
            )
        except BackplaneUnavailable as exc:
            log.warning("connection limits not checked (%s): admitted", exc)
            return None
        finally:
            self._checks.release()
        if over == "user":
            self.counters.refused_user_limit += 1
            return Refusal(f"too many connections for this user: at most {limits.max_connections_per_user}")
        if over == "address":
            self.counters.refused_address_limit += 1
            return Refusal(f"too many connections from your address: at most {limits.max_connections_per_ip}")
        return None

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        try:
            await self.registry.release(connection_id, user_id, address)
        except BackplaneUnavailable as exc:  # its registration expires by itself
            log.debug("release of %s not recorded: %s", connection_id, exc)

    async def expect_reconnects(self, addresses: Mapping[str, int], ttl: float) -> None:
        """This instance is draining and closes these connections (count per address): announce that
        they will come back, so that no instance takes their reconnects for a flood. Best effort."""
        if not addresses:
            return
        try:
            async with asyncio.timeout(ANNOUNCE_TIMEOUT):  # the drain waits for it: never long
                await self.registry.expect_reconnects(addresses, ttl)
        except (BackplaneUnavailable, TimeoutError) as exc:
            log.warning("reconnects after the drain not announced (%r): the connect rate applies", exc)

    async def _expected(self, address: str) -> bool:
        """Whether a draining instance announced a reconnect of ``address`` that is not spent yet."""
        try:
            return await self.registry.take_reconnect(address)
        except BackplaneUnavailable:
            return False

    def _take(self, address: str, now: float) -> bool:
        rates = self._rates
        bucket = rates.get(address)
        if bucket is None:
            bucket = rates[address] = TokenBucket(
                self.limits.connect_rate_per_ip, self.limits.connect_burst_per_ip, now
            )
            if len(rates) > MAX_ADDRESSES:
                rates.popitem(last=False)
        else:
            rates.move_to_end(address)
        return bucket.take(now)
