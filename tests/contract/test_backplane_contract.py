"""The Backplane contract: every adapter sequences, remembers, replays and delivers the same way.

Each test runs against the in-memory backplane and against the Redis backplane on a real ``redis-server``.
"""

from __future__ import annotations

import asyncio

import pytest

from legend.domain.envelope import Envelope, with_seq
from legend.ports.backplane import Backplane, Outgoing
from tests.contract.conftest import Node, Nodes


def body(stream: str, n: int, kind: str = "pattern_alert") -> bytes:
    """An encoded message that already names its channel, as the Publisher makes them."""
    return b'{"type":"%s","n":%d,"note":"caf\xc3\xa9 \\"q\\"","channel":"%s"}' % (
        kind.encode(),
        n,
        stream.encode(),
    )


async def publish(backplane: Backplane, stream: str, n: int, history_size: int = 100) -> int:
    envelope = await backplane.publish(
        Outgoing(stream, "pattern_alerts", "pattern_alert", body(stream, n), history_size)
    )
    return envelope.seq


async def test_seq_starts_at_one_and_is_gap_free_per_stream(nodes: Nodes) -> None:
    node = await nodes.make()
    seqs_a = [await publish(node.backplane, "patterns", n) for n in range(5)]
    seqs_b = [await publish(node.backplane, "news:AAPL", n) for n in range(3)]
    seqs_a += [await publish(node.backplane, "patterns", n) for n in range(5, 7)]
    assert seqs_a == [1, 2, 3, 4, 5, 6, 7]
    assert seqs_b == [1, 2, 3]


async def test_envelope_is_the_body_with_seq_appended(nodes: Nodes) -> None:
    node = await nodes.make()
    await publish(node.backplane, "patterns", 0)
    envelope = await node.backplane.publish(
        Outgoing("ticker:AAPL", "price_updates", "price_update", body("ticker:AAPL", 7, "price_update"), 100)
    )
    assert envelope.stream == "ticker:AAPL"
    assert envelope.seq == 1
    assert envelope.type == "price_update"
    assert envelope.text == with_seq(body("ticker:AAPL", 7, "price_update"), 1).decode()
    assert envelope.text.endswith(',"channel":"ticker:AAPL","seq":1}')


async def test_history_keeps_only_the_last_history_size(nodes: Nodes) -> None:
    node = await nodes.make()
    for n in range(7):
        await publish(node.backplane, "patterns", n, history_size=3)
    replay = await node.backplane.replay("patterns", None)
    assert [env.seq for env in replay.envelopes] == [5, 6, 7]
    assert replay.last_seq == 7
    assert replay.complete
    assert replay.envelopes[0].text == with_seq(body("patterns", 4), 5).decode()
    assert replay.envelopes[0].type == "pattern_alert"


async def test_history_size_zero_keeps_counting_but_remembers_nothing(nodes: Nodes) -> None:
    node = await nodes.make()
    for n in range(3):
        assert await publish(node.backplane, "patterns", n, history_size=0) == n + 1
    replay = await node.backplane.replay("patterns", None)
    assert replay.envelopes == []
    assert replay.last_seq == 3


async def test_replay_without_since_returns_the_whole_history(nodes: Nodes) -> None:
    node = await nodes.make()
    published = [
        await node.backplane.publish(
            Outgoing("patterns", "pattern_alerts", "pattern_alert", body("patterns", n), 10)
        )
        for n in range(4)
    ]
    replay = await node.backplane.replay("patterns", None)
    assert replay.envelopes == published
    assert (replay.last_seq, replay.complete) == (4, True)


@pytest.mark.parametrize(
    ("since", "seqs", "complete"),
    [
        (0, [1, 2, 3, 4, 5], True),  # from the very start: all of it, nothing lost
        (2, [3, 4, 5], True),  # exactly what came after
        (4, [5], True),
        (5, [], True),  # up to date: nothing, nothing lost
        (9, [1, 2, 3, 4, 5], False),  # ahead of the stream (it restarted): all there is, flagged
    ],
)
async def test_replay_after_since(nodes: Nodes, since: int, seqs: list[int], complete: bool) -> None:
    node = await nodes.make()
    for n in range(5):
        await publish(node.backplane, "patterns", n, history_size=10)
    replay = await node.backplane.replay("patterns", since)
    assert [env.seq for env in replay.envelopes] == seqs
    assert replay.last_seq == 5
    assert replay.complete is complete


@pytest.mark.parametrize(
    ("since", "seqs", "complete"),
    [
        (1, [4, 5, 6], False),  # 2 and 3 fell out of the history: the client must know
        (2, [4, 5, 6], False),  # 3 is gone
        (3, [4, 5, 6], True),  # the history still reaches back to 4
        (5, [6], True),
    ],
)
async def test_replay_reports_when_history_no_longer_reaches(
    nodes: Nodes, since: int, seqs: list[int], complete: bool
) -> None:
    node = await nodes.make()
    for n in range(6):
        await publish(node.backplane, "patterns", n, history_size=3)
    replay = await node.backplane.replay("patterns", since)
    assert [env.seq for env in replay.envelopes] == seqs
    assert replay.complete is complete


async def test_replay_of_an_unknown_stream(nodes: Nodes) -> None:
    node = await nodes.make()
    fresh = await node.backplane.replay("ticker:NONE", None)
    assert (fresh.envelopes, fresh.last_seq, fresh.complete) == ([], 0, True)
    from_zero = await node.backplane.replay("ticker:NONE", 0)
    assert (from_zero.envelopes, from_zero.complete) == ([], True)
    ahead = await node.backplane.replay("ticker:NONE", 3)
    assert (ahead.envelopes, ahead.last_seq, ahead.complete) == ([], 0, False)


async def test_every_envelope_is_delivered_in_order_with_its_exact_text(nodes: Nodes) -> None:
    node = await nodes.make()
    published = []
    for n in range(30):
        stream = ("patterns", "ticker:AAPL", "alerts:user:bob")[n % 3]
        published.append(
            await node.backplane.publish(
                Outgoing(stream, "pattern_alerts", "pattern_alert", body(stream, n), 100)
            )
        )
    delivered = await node.recorder.wait_for(30)
    assert delivered == published
    assert [env.seq for env in node.recorder.of("ticker:AAPL")] == list(range(1, 11))


async def test_concurrent_publishes_get_consecutive_seqs_delivered_in_seq_order(nodes: Nodes) -> None:
    # Redis: a burst 30 times the connection pool. Each publish's deadline covers its wait for a pooled
    # connection, behind up to 29 rounds of the others: on a loaded machine (CI, four test workers) 300 of
    # them once took longer than 12 s, so 120, with a deadline of half a minute.
    node = await nodes.make(max_connections=4, socket_timeout=30.0)
    envelopes = await asyncio.gather(*(publish_envelope(node.backplane, "patterns", n) for n in range(120)))
    assert sorted(env.seq for env in envelopes) == list(range(1, 121))
    delivered = await node.recorder.wait_for(120)
    assert [env.seq for env in delivered] == list(range(1, 121))
    assert sorted(delivered, key=lambda env: env.seq) == sorted(envelopes, key=lambda env: env.seq)


async def publish_envelope(backplane: Backplane, stream: str, n: int) -> Envelope:
    return await backplane.publish(Outgoing(stream, "pattern_alerts", "pattern_alert", body(stream, n), 100))


async def test_interest_is_what_was_set_last(nodes: Nodes) -> None:
    node = await nodes.make()
    assert await node.cluster.interest() == set()
    await node.cluster.set_interest(["AAPL", "MSFT"])
    assert await node.cluster.interest() == {"AAPL", "MSFT"}
    await node.cluster.set_interest({"TSLA"})
    assert await node.cluster.interest() == {"TSLA"}
    await node.cluster.set_interest([])
    assert await node.cluster.interest() == set()


async def test_a_lease_is_taken_and_renewed_by_its_holder(nodes: Nodes) -> None:
    node = await nodes.make()
    assert await node.cluster.hold_lease("streamer", 5.0) is True
    assert await node.cluster.hold_lease("streamer", 5.0) is True
    assert await node.cluster.hold_lease("other", 5.0) is True


async def test_health_reports_ok_and_the_backend(nodes: Nodes) -> None:
    node = await nodes.make()
    health = node.backplane.health()
    assert health["ok"] is True
    assert health["backend"] == nodes.kind


async def test_stop_is_idempotent(nodes: Nodes) -> None:
    node: Node = await nodes.make()
    await node.backplane.stop()
    await node.backplane.stop()


async def test_announced_reconnects_are_spent_once_anywhere_and_then_expire(nodes: Nodes) -> None:
    """A draining instance announces its closed connections per address; any instance spends them, each
    once, also when asked at the same moment, and what is not spent expires."""
    draining = await nodes.make()
    other = await nodes.make() if nodes.kind == "redis" else draining
    office = "203.0.113.7"
    await draining.backplane.expect_reconnects({office: 4, "198.51.100.1": 1}, 30.0)
    await draining.backplane.expect_reconnects({office: 2}, 30.0)  # a second drain adds to it
    taken = await asyncio.gather(*(other.backplane.take_reconnect(office) for _ in range(10)))
    assert sorted(taken) == [False] * 4 + [True] * 6
    assert await other.backplane.take_reconnect("192.0.2.9") is False  # never announced
    assert await other.backplane.take_reconnect("198.51.100.1") is True
    await draining.backplane.expect_reconnects({office: 5}, 0.2)
    await asyncio.sleep(0.6)  # spending is the only way to look, so wait out the 0.2 s instead
    assert await other.backplane.take_reconnect(office) is False
