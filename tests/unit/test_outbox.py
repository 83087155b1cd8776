"""The per-connection outbox: order of service, conflation, budget, bounds and history floors."""

from __future__ import annotations

from legend.domain.channels import Delivery
from legend.domain.envelope import Envelope, seal
from legend.domain.throttle import SlidingWindow, TokenBucket
from legend.services.streaming.outbox import Outbox, Pushed


def env(stream: str, seq: int, kind: str = "price_update") -> Envelope:
    return seal(stream, seq, kind, b'{"type":"%s","channel":"%s"}' % (kind.encode(), stream.encode()))


def drain(box: Outbox, now: float) -> list[str]:
    out = []
    while True:
        text, _ = box.pop(now)
        if text is None:
            return out
        out.append(text)


def test_wire_text_carries_seq_once() -> None:
    assert env("ticker:A", 7).text == '{"type":"price_update","channel":"ticker:A","seq":7}'


def test_control_first_then_reliable_then_prices() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    box.push(env("ticker:A", 1), Delivery.CONFLATE)
    box.push(env("patterns", 1, "pattern_alert"), Delivery.RELIABLE)
    box.push_control("pong")
    assert drain(box, 0.0) == ["pong", env("patterns", 1, "pattern_alert").text, env("ticker:A", 1).text]


def test_prices_conflate_to_the_newest_keeping_their_place() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    box.push(env("ticker:A", 1), Delivery.CONFLATE)
    box.push(env("ticker:B", 1), Delivery.CONFLATE)
    box.push(env("ticker:A", 2), Delivery.CONFLATE)
    assert box.conflated == 1
    assert drain(box, 0.0) == [env("ticker:A", 2).text, env("ticker:B", 1).text]


def test_budget_holds_prices_back_but_never_reliable_or_control() -> None:
    box = Outbox(max_per_second=3, capacity=100)
    sent = []
    for seq in range(1, 11):
        box.push(env("ticker:A", seq), Delivery.CONFLATE)
        text, _ = box.pop(0.0)
        if text:
            sent.append(text)
    assert len(sent) == 3
    text, wait = box.pop(0.5)
    span = 1.0 - 1.0 / 3 / 2  # the window less its slack of half an interval
    assert text is None and wait is not None and span - 0.5 - 0.01 < wait <= span - 0.5
    box.push(env("patterns", 1, "pattern_alert"), Delivery.RELIABLE)
    box.push_control("pong")
    assert drain(box, 0.5) == ["pong", env("patterns", 1, "pattern_alert").text]
    text, _ = box.pop(1.0)  # the window has moved on: the newest price goes out
    assert text == env("ticker:A", 10).text


def test_reliable_overflow_is_reported_not_dropped() -> None:
    box = Outbox(max_per_second=10, capacity=3)
    assert all(box.push(env("patterns", i, "pattern_alert"), Delivery.RELIABLE) for i in range(1, 4))
    assert not box.push(env("patterns", 4, "pattern_alert"), Delivery.RELIABLE)
    assert box.overflowed
    assert len(drain(box, 0.0)) == 4  # nothing silently lost


def big(stream: str, seq: int, size: int, kind: str = "pattern_alert") -> Envelope:
    """A message whose text is about ``size`` characters."""
    return seal(
        stream,
        seq,
        kind,
        b'{"type":"%s","channel":"%s","m":"%s"}' % (kind.encode(), stream.encode(), b"x" * size),
    )


def test_must_deliver_past_max_bytes_overflows_by_bytes_and_loses_nothing() -> None:
    box = Outbox(max_per_second=10, capacity=1000, max_bytes=10_000)
    pushed = [box.push(big("patterns", i, 1000), Delivery.RELIABLE) for i in range(1, 11)]
    sizes = [len(big("patterns", i, 1000).text) for i in range(1, 11)]
    assert sum(sizes[:9]) <= 10_000 < sum(sizes) == box.pending_bytes
    assert all(pushed[:9])
    assert pushed[9] is Pushed.OVERFLOW and box.overflowed  # the tenth crosses 10,000 characters
    assert box.overflow_reason == "more than 10000 bytes pending"
    assert len(drain(box, 0.0)) == 10  # reported, not dropped: the connection is closed, and resumes
    assert box.pending_bytes == 0


def test_one_frame_larger_than_max_bytes_still_goes_out() -> None:
    box = Outbox(max_per_second=10, capacity=1000, max_bytes=4096)
    assert box.push_control("h" * 50_000, "history")  # a large history reply, alone: no overflow
    assert box.pending_bytes == 50_000 and not box.overflowed
    assert not box.push_control("pong")  # anything more on top of it is past the bound
    assert box.overflow_reason == "more than 4096 bytes pending"


def test_many_conflated_keys_are_bounded_in_bytes_too() -> None:
    box = Outbox(max_per_second=10, capacity=1000, max_bytes=8192)
    results = [box.push(big(f"quotes:S{i}", 1, 100, "quote"), Delivery.CONFLATE) for i in range(200)]
    assert Pushed.OVERFLOW in results and box.overflowed


def test_pending_bytes_follow_every_way_in_and_out() -> None:
    """Merges, history holds and floors, forgetting a stream and taking the replies: the count is
    always the sum of what waits, and 0 once it is all out."""
    box = Outbox(max_per_second=100, capacity=1000, max_bytes=1 << 20)

    def counted_right() -> bool:
        """The running count equals a count of everything waiting or held, made from scratch."""
        running = box.pending_bytes
        box._recount()
        return running == box.pending_bytes

    box.push(big("ticker:A", 1, 10), Delivery.CONFLATE)
    box.push(big("ticker:A", 2, 500), Delivery.CONFLATE)  # merged: the newer, larger one counts
    box.push(big("patterns", 1, 300), Delivery.RELIABLE)
    box.push_control("r" * 40)
    box.hold("news")
    for seq in range(1, 5):
        box.push(big("news", seq, 200, "news"), Delivery.RELIABLE)
    assert box.pending_bytes > 1000 and counted_right()
    box.covered("news", 2)  # 1 and 2 dropped, 3 and 4 released
    assert counted_right()
    box.push(big("quotes", 1, 50, "quote"), Delivery.RELIABLE)
    box.forget("quotes")
    assert counted_right()
    assert box.take_control() == ["r" * 40]
    assert counted_right()
    drain(box, 10.0)
    assert box.pending_bytes == 0 and box.idle


def test_history_floor_drops_what_history_already_covered() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    for seq in (5, 6, 7):
        box.push(env("patterns", seq, "pattern_alert"), Delivery.RELIABLE)
    box.push(env("ticker:A", 3), Delivery.CONFLATE)
    box.covered("patterns", 6)
    box.covered("ticker:A", 3)
    box.push(env("patterns", 6, "pattern_alert"), Delivery.RELIABLE)  # late duplicate
    assert drain(box, 0.0) == [env("patterns", 7, "pattern_alert").text]


def test_forget_drops_pending_of_a_left_stream() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    box.push(env("patterns", 1, "pattern_alert"), Delivery.RELIABLE)
    box.push(env("ticker:A", 1), Delivery.CONFLATE)
    box.forget("patterns")
    box.forget("ticker:A")
    assert len(box) == 0


def test_sliding_window_never_lets_a_double_burst_through() -> None:
    window = SlidingWindow(limit=10, window=1.0)
    times = [i * 0.01 for i in range(10)]
    for t in times:
        assert window.wait(t) == 0
        window.record(t)
    assert window.wait(0.94) > 0  # a token bucket would allow 10 more around here
    assert window.wait(0.95) == 0  # the window less its slack (half an interval)


def test_a_feed_at_exactly_the_budget_is_not_held_back_by_its_own_jitter() -> None:
    """10 prices a second against a budget of 10, each reaching the connection up to 40 ms late (the
    place of the socket in a fan-out loop that takes longer one time than the next): a strict window
    holds about half of them back (each one through the deferred path: queued, timed, written in a
    second pass); with the slack none waits."""
    import random

    def held_back(window: SlidingWindow) -> int:
        rng = random.Random(7)
        waited = 0
        for i in range(600):
            arrival = i / 10 + rng.uniform(0.0, 0.04)
            wait = window.wait(arrival)
            window.record(arrival + wait)
            waited += wait > 0
        return waited

    assert held_back(SlidingWindow(limit=10, window=1.0)) == 0
    assert held_back(SlidingWindow(limit=10, window=1.0, slack=0.0)) > 200


def test_the_slack_never_lets_more_than_the_limit_into_the_shorter_window() -> None:
    window = SlidingWindow(limit=10, window=1.0)
    sent: list[float] = []
    now = 0.0
    while now < 5.0:  # offered far over the budget: everything that fits goes
        if window.fits(now):
            window.record(now)
            sent.append(now)
        now += 0.001
    span = 0.95
    assert all(sum(1 for t in sent if start <= t < start + span) <= 10 for start in sent)
    assert len(sent) <= 5.0 / span * 10 + 10


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert not bucket.full
    bucket.take(10)
    assert bucket.full


def test_must_deliver_traffic_does_not_grow_the_budget_window() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    for seq in range(1, 10_001):
        box.push(env("patterns", seq, "pattern_alert"), Delivery.RELIABLE)
        assert box.pop(seq * 0.0001)[0] is not None
    assert len(box._budget._times) <= 10  # only the last `limit` send times are kept


def test_a_large_budget_is_counted_in_tenths_in_constant_memory() -> None:
    window = SlidingWindow(limit=1000, window=1.0)
    for i in range(1000):  # 1,000 in the first half second
        assert window.fits(i / 2000)
        window.record(i / 2000)
    assert not window.fits(0.6) and window.wait(0.6) > 0
    assert window.fits(1.1)  # the tenths that held them have left the window
    assert len(window._counts) == 10 and not window._times  # no per-event memory


def test_a_held_stream_defers_until_its_history_covers_it_and_counts_against_capacity() -> None:
    box = Outbox(max_per_second=10, capacity=5)
    box.hold("patterns")
    assert box.push(env("patterns", 4, "pattern_alert"), Delivery.RELIABLE) is Pushed.DEFERRED
    assert box.push(env("patterns", 5, "pattern_alert"), Delivery.RELIABLE) is Pushed.DEFERRED
    assert len(box) == 0
    assert box.covered("patterns", 4) is Pushed.QUEUED
    assert [box.pop(0)[0] for _ in range(2)] == [env("patterns", 5, "pattern_alert").text, None]
    box.hold("patterns")
    for seq in range(6, 13):
        box.push(env("patterns", seq, "pattern_alert"), Delivery.RELIABLE)
    assert box.overflowed  # held messages count against capacity too


def test_take_records_only_what_fits_and_undo_forgets_the_last_record() -> None:
    for limit in (3, 1_000):  # exact, and counted in tenths
        window = SlidingWindow(limit, slack=0.0)
        assert all(window.take(0.5) for _ in range(limit)) and not window.take(0.5)
        window.undo()  # the last one was not sent after all
        assert window.take(0.5) and not window.take(0.5)
        assert window.take(1.6)  # a window later
    window = SlidingWindow(2, slack=0.0)
    window.record(0.0)
    window.record(0.9)
    window.record(1.2)  # must-deliver past the limit pushes out the oldest (0.0)
    window.undo()
    assert not window.fits(0.95) and abs(window.wait(0.95) - 0.05) < 1e-9  # 0.0 is back, beside 0.9


def test_a_write_the_socket_declined_gives_its_budget_back() -> None:
    """``offer`` takes the budget of a message it says to WRITE; when the socket then declines it, the
    fan-out refunds it before queueing, so that the message is counted once, when it really goes out."""
    box = Outbox(max_per_second=2, capacity=10)

    def price(seq: int) -> Envelope:
        return seal("ticker:AAPL", seq, "price_update", b'{"type":"price_update"}', key="AAPL")

    first = price(1)
    assert box.offer(first, Delivery.CONFLATE, 0.0) is Pushed.WRITE
    box.refund(True)  # declined by the socket
    assert box.push(first, Delivery.CONFLATE) is Pushed.QUEUED
    assert box.pop(0.0)[0] == first.text  # popped: counted now
    assert box.offer(price(2), Delivery.CONFLATE, 0.0) is Pushed.WRITE  # the second of 2 in the second
    assert box.offer(price(3), Delivery.CONFLATE, 0.0) is Pushed.QUEUED  # the budget is spent
