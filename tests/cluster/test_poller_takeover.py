"""Losing the quote poller (issue 25): prices are back within 3 s of its holder's death, and a holder that
was frozen past its lease (SIGSTOP) publishes nothing once it comes back (SIGCONT): its lease was taken
over, and fencing refuses a publish it had under way. The cluster's ``lease_ttl`` is 10 s here: the
poller's lease has its own, shorter ttl (``poller_lease_ttl``, 2 s by default)."""

from __future__ import annotations

import signal
import time
from contextlib import closing
from datetime import datetime

import httpx

from tests.cluster.conftest import Cluster, stats, until
from tests.cluster.test_multi_instance import gap_free, is_price, the_leader
from tests.support.wsclient import connect

TAKEOVER = 3.0  # seconds from losing the poller to the next price, at most (issue 25)


def slow_leases(size: int) -> Cluster:
    """Leases other than the poller's keep the slow 10 s ttl: the poller's own ttl is what counts."""
    return Cluster(size, redis={"lease_ttl": 10.0}).start()


async def test_prices_are_back_within_3_s_of_killing_the_poller() -> None:
    with closing(slow_leases(3)) as cluster:
        async with httpx.AsyncClient(timeout=10) as http:
            leader, _ = await the_leader(http, cluster.servers)
            survivor = next(s for s in cluster.servers if s is not leader)
            client = await connect(survivor.ws_url, user_id="steady")
            await client.subscribe("ticker", "AAPL")
            await client.collect(is_price("AAPL"), 2, timeout=10)
            leader.stop(signal.SIGKILL)
            killed = time.monotonic()
            first = await client.expect(lambda m: is_price("AAPL")(m) and m["_at"] > killed, timeout=10)
            back = first["_at"] - killed
            print(f"prices back {back:.2f}s after SIGKILL of the poller")
            assert back < TAKEOVER, f"prices back only {back:.2f}s after the poller was killed"
            await client.collect(lambda m: is_price("AAPL")(m) and m["_at"] > killed, 3, timeout=10)
            seqs = [m["seq"] for m in client.received if is_price("AAPL")(m)]
            assert gap_free(seqs), seqs
            await client.close()


async def test_a_poller_frozen_past_its_lease_publishes_nothing_after_the_takeover() -> None:
    with closing(slow_leases(2)) as cluster:
        async with httpx.AsyncClient(timeout=10) as http:
            frozen, _ = await the_leader(http, cluster.servers)
            other = next(s for s in cluster.servers if s is not frozen)
            client = await connect(other.ws_url, user_id="steady")
            await client.subscribe("ticker", "AAPL")
            await client.collect(is_price("AAPL"), 2, timeout=10)
            assert frozen.process is not None
            frozen.process.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                # the other instance takes over and prices flow while the old holder is frozen
                await until(lambda: _leads(http, other), 10, "the other instance took the lease", every=0.05)
                first = await client.expect(lambda m: is_price("AAPL")(m) and m["_at"] > stopped, timeout=10)
                back = first["_at"] - stopped
                print(f"prices back {back:.2f}s after SIGSTOP of the poller")
                assert back < TAKEOVER
                await client.collect(lambda m: is_price("AAPL")(m) and m["_at"] > stopped, 4, timeout=10)
            finally:
                frozen.process.send_signal(signal.SIGCONT)
            resumed_wall = time.time()
            resumed = time.monotonic()

            # the old holder comes back: it learns it lost the lease and publishes nothing
            async def lost() -> dict[str, object] | None:
                status = (await stats(http, frozen))["streamer"]
                return status if status["lease_lost"] >= 1 and not status["leader"] else None

            status, _ = await until(lost, 10, "the old holder reports the lease lost")
            await client.collect(lambda m: is_price("AAPL")(m) and m["_at"] > resumed, 4, timeout=10)
            status = (await stats(http, frozen))["streamer"]
            assert status["leader"] is False
            last = status["last_publish"]
            assert last is None or datetime.fromisoformat(last).timestamp() < resumed_wall, status
            assert (await stats(http, other))["streamer"]["leader"] is True
            seqs = [m["seq"] for m in client.received if is_price("AAPL")(m)]
            assert gap_free(seqs), seqs  # one sequence: nothing published twice or out of turn
            await client.close()


async def _leads(http: httpx.AsyncClient, server: object) -> bool:
    return bool((await stats(http, server))["streamer"]["leader"])  # type: ignore[arg-type]


async def test_a_takeover_continues_the_replay_where_the_old_poller_left_it() -> None:
    replay = {"provider": "replay"}  # the S&P 500 sample as SPX, one bar a fetch
    with closing(Cluster(2, quotes=replay).start()) as cluster:
        async with httpx.AsyncClient(timeout=10) as http:
            leader, _ = await the_leader(http, cluster.servers)
            survivor = next(s for s in cluster.servers if s is not leader)
            client = await connect(survivor.ws_url, user_id="replay")
            await client.subscribe("ticker", "SPX")
            before = await client.collect(is_price("SPX"), 4, timeout=15)
            leader.stop(signal.SIGKILL)
            killed = time.monotonic()
            after = await client.collect(lambda m: is_price("SPX")(m) and m["_at"] > killed, 3, timeout=15)
            times = [m["timestamp"] for m in (*before, *after)]
            assert times == sorted(times) and len(set(times)) == len(times), times  # forward, no repeat
            print(
                f"replay quote time {before[-1]['timestamp']} before the takeover, {after[0]['timestamp']} after"
            )
            await client.close()
