"""The REST request limits' parts, on a clock the test moves: the per-key token buckets, the Retry-After
they give, how client addresses are grouped, and the settings that turn them off."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.exceptions import TooManyRequestsException

from legend.adapters.http.rate_limit import ApiLimits, address_key, retry_after
from legend.domain.throttle import KeyedBuckets
from legend.settings import SecuritySettings


def test_a_key_gets_its_burst_then_the_rate_and_others_are_not_affected() -> None:
    buckets = KeyedBuckets(rate=20.0, burst=60)
    assert all(buckets.take("amy", 0.0) == 0.0 for _ in range(60))
    wait = buckets.take("amy", 0.0)
    assert wait == pytest.approx(0.05)  # one token every 1/20 s
    assert buckets.take("bob", 0.0) == 0.0
    # a loop of 300 requests a second for 10 s, a second later: what refilled (20), then 20 a second
    allowed = sum(buckets.take("amy", 1.0 + i / 300) == 0.0 for i in range(3000))
    assert 218 <= allowed <= 221


def test_least_recently_used_keys_are_forgotten_past_the_bound() -> None:
    buckets = KeyedBuckets(rate=1.0, burst=1, max_keys=100)
    for i in range(1000):
        buckets.take(f"client-{i}", 0.0)
    assert len(buckets) == 100


def test_retry_after_is_whole_seconds_of_at_least_one() -> None:
    assert [retry_after(s) for s in (0.01, 0.05, 1.0, 1.2, 59.9)] == ["1", "1", "1", "2", "60"]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_ipv6_addresses_count_per_64(host: str, key: str) -> None:
    assert address_key(host) == key


def test_the_user_limit_answers_429_with_retry_after_and_zero_turns_it_off() -> None:
    now = [0.0]
    limits = ApiLimits(SecuritySettings(api_rate=1.0, api_burst=2), clock=lambda: now[0])
    limits.check_user("amy")
    limits.check_user("amy")
    with pytest.raises(TooManyRequestsException) as refused:
        limits.check_user("amy")
    assert refused.value.headers == {"Retry-After": "1"} and "at most 1 a second" in refused.value.detail
    now[0] = 1.0
    limits.check_user("amy")
    off = ApiLimits(SecuritySettings(api_rate=0, api_address_rate=0))
    assert off.users is None and off.addresses is None
    for _ in range(1000):
        off.check_user("amy")


def test_the_readme_quotes_the_429_of_the_default_limit() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    limits = ApiLimits(SecuritySettings(), clock=lambda: 0.0)
    for _ in range(60):
        limits.check_user("amy")
    with pytest.raises(TooManyRequestsException) as refused:
        limits.check_user("amy")
    assert f'"detail": "{refused.value.detail}"' in readme
