"""The backoff helper: delays grow by the factor up to the maximum, jitter stays within its band, a
success starts again from the initial delay."""

from __future__ import annotations

import math

import pytest

from legend.runtime.backoff import Backoff, exponential


def test_delays_double_up_to_the_maximum_and_a_reset_starts_again() -> None:
    backoff = Backoff(0.5, maximum=10.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.failures == 7 and backoff.current == 10.0
    backoff.reset()
    assert backoff.current == 0.5 and backoff.next() == 0.5 and backoff.next() == 1.0


def test_another_factor_and_no_maximum() -> None:
    backoff = Backoff(1.0, factor=3.0)
    assert [backoff.next() for _ in range(4)] == [1.0, 3.0, 9.0, 27.0]


def test_jitter_multiplies_each_delay_within_its_band() -> None:
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return high

    backoff = Backoff(0.1, maximum=0.4, jitter=0.2, uniform=uniform)
    delays = [backoff.next() for _ in range(4)]
    assert delays == pytest.approx([0.12, 0.24, 0.48, 0.48])
    assert asked == [(0.8, 1.2)] * 4
    assert backoff.current == 0.4  # the jitter never feeds the growth


def test_real_jitter_stays_in_the_band() -> None:
    backoff = Backoff(1.0, factor=1.0, jitter=0.2)
    assert all(0.8 <= backoff.next() <= 1.2 for _ in range(200))


async def test_sleep_waits_the_next_delay() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    backoff = Backoff(1.0, maximum=3.0, sleep=sleep)
    assert [await backoff.sleep() for _ in range(3)] == [1.0, 2.0, 3.0]
    assert slept == [1.0, 2.0, 3.0]


def test_exponential_is_the_same_delay_as_a_function() -> None:
    assert [exponential(2.0, n, maximum=20.0) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert exponential(1.0, 5000, maximum=60.0) == 60.0  # no overflow for a long outage
    assert exponential(1.0, 5000) == math.inf
    assert exponential(1.5, -1) == 1.5


@pytest.mark.parametrize(
    "arguments", [{"initial": -1.0}, {"factor": 0.5}, {"maximum": -1.0}, {"jitter": 1.0}]
)
def test_nonsense_is_refused(arguments: dict[str, float]) -> None:
    initial = arguments.pop("initial", 1.0)
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, **arguments)
