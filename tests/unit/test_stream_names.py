"""Stream names have one owner: StreamName reads back what it writes, the channels and the messages of
other programs read names through it, and nothing else writes them by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import legend
from legend.domain.channels import BUILTIN_CHANNELS, ChannelError, ChannelSpec
from legend.domain.external import external_message
from legend.domain.stream_name import (
    InvalidStreamName,
    StreamName,
    bar_stream,
    private_stream,
    ticker_stream,
)

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


NAMES = [
    ("ticker:AAPL", StreamName("ticker", "AAPL")),
    ("ticker:BRK.B", StreamName("ticker", "BRK.B")),
    ("ticker:^GSPC", StreamName("ticker", "^GSPC")),
    ("patterns", StreamName("patterns")),
    ("market_status", StreamName("market_status")),
    ("alerts", StreamName("alerts")),
    ("alerts:user:bob", StreamName("alerts", None, "bob")),
    ("portfolio:user:ann@example.com", StreamName("portfolio", None, "ann@example.com")),
    ("news:AAPL", StreamName("news", "AAPL")),
    ("bars:AAPL:1m", StreamName("bars", "AAPL", None, "1m")),
    ("bars:BRK.B:15m", StreamName("bars", "BRK.B", None, "15m")),
    ("news:AAPL:user:bob", StreamName("news", "AAPL", "bob")),
    ("news:user", StreamName("news", "user")),  # a key that reads "user" is still a key
    ("news:user:user:user", StreamName("news", "user", "user")),
]


@pytest.mark.parametrize(("text", "name"), NAMES)
def test_a_stream_name_reads_back_as_the_parts_it_was_written_from(text: str, name: StreamName) -> None:
    assert StreamName.parse(text) == name
    assert name.format() == str(name) == text
    assert StreamName.parse(name.format()) == name
    assert StreamName.channel_of(text) == name.channel
    assert name.private == (name.user_id is not None)


@pytest.mark.parametrize("channel", ["ticker", "news", "a_b-c"])
@pytest.mark.parametrize("key", [None, "AAPL", "BF-B", "user"])
@pytest.mark.parametrize("user_id", [None, "bob", "user", "a.b@c-d_e"])
def test_every_combination_of_parts_round_trips(channel: str, key: str | None, user_id: str | None) -> None:
    name = StreamName(channel, key, user_id)
    assert StreamName.parse(name.format()) == name
    assert name.public() == StreamName(channel, key)
    assert name.bare() == StreamName(channel, None, user_id)
    assert name.public().owned_by("zed") == StreamName(channel, key, "zed")


@pytest.mark.parametrize(
    "text",
    ["", ":", "news:", ":AAPL", "news::user:bob", "news:user:", "news:AAPL:bob", "news:AAPL:user:",
     "news:A:B:C", "alerts:user:bob:x", "a:b:c:d:e"],
)  # fmt: skip
def test_text_that_is_no_stream_name_is_refused(text: str) -> None:
    with pytest.raises(InvalidStreamName):
        StreamName.parse(text)


@pytest.mark.parametrize(
    ("channel", "key", "user_id"), [("", None, None), ("a:b", None, None), ("x", "", None), ("x", "A:B", None),
                                    ("x", None, ""), ("x", None, "a:b")],
)  # fmt: skip
def test_parts_that_would_not_read_back_are_refused(
    channel: str, key: str | None, user_id: str | None
) -> None:
    with pytest.raises(InvalidStreamName):
        StreamName(channel, key, user_id)


def test_the_builders_write_the_names_the_channels_read() -> None:
    assert ticker_stream("AAPL") == "ticker:AAPL"
    assert private_stream("alerts", "bob") == "alerts:user:bob"
    ticker, _, alerts, bars, _, watchlist = BUILTIN_CHANNELS
    assert (
        ticker.streams("AAPL", "bob") == ("ticker:AAPL",) and ticker.subscription_key("AAPL") == "ticker:AAPL"
    )
    assert alerts.streams(None, "bob") == ("alerts", "alerts:user:bob")
    assert alerts.parse_stream("alerts:user:bob") == (None, "bob")
    assert watchlist.streams(None, "bob") == ("watchlist:user:bob",) == (private_stream("watchlist", "bob"),)
    assert ticker.stream_name("ticker:AAPL") == StreamName("ticker", "AAPL")
    assert bar_stream("AAPL", "1m") == "bars:AAPL:1m" == bars.streams("AAPL", "bob", "1m")[0]
    assert bars.stream_name("bars:AAPL:1m") == StreamName("bars", "AAPL", None, "1m")


def test_a_channel_reads_only_its_own_streams() -> None:
    private = ChannelSpec(name="mine", keyed=True, private=True, public_stream=False, mirror_keyed=True)
    assert private.streams("AAPL", "bob") == ("mine:AAPL:user:bob",)
    assert private.parse_stream("mine:AAPL:user:bob") == ("AAPL", "bob")
    assert private.mirror_stream("mine:AAPL:user:bob") == "mine:user:bob"
    for bad in ("mine", "mine:AAPL", "mine:aapl:user:bob", "mine:AAPL:bob", "mine::user:bob", "other:user:b"):
        with pytest.raises(ChannelError):
            private.parse_stream(bad)


def test_a_plugin_topic_message_must_name_a_stream_that_reads_back() -> None:
    def parse(channel: str) -> object:
        return external_message("news", msgspec.json.encode({"type": "news", "channel": channel}), NOW)

    assert not isinstance(parse("news:AAPL:user:bob"), str)
    assert parse("news:AAPL:bob") == "a message on 'news' needs a valid 'channel'"
    assert parse("alerts:user:bob") == "channel 'alerts:user:bob' does not belong on 'news'"


BUILT_BY_HAND = re.compile(r"""f["'][^"'\n]*(?:ticker:\{|:user:\{)""")
# Redis keys, not stream names (``conn:user:{id}``); the adapter moving to adapters/redis/ adopts StreamName
NOT_STREAM_NAMES = ("adapters/redis_backplane.py", "adapters/redis/")


def test_nothing_else_writes_stream_names_by_hand() -> None:
    root = Path(legend.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "stream_name.py" and not str(path.relative_to(root)).startswith(NOT_STREAM_NAMES)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BUILT_BY_HAND.search(line)
    ]
    assert not offenders, offenders
