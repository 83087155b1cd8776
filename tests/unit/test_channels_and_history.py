"""Channels map onto streams; stream logs sequence and replay."""

from __future__ import annotations

import pytest

from legend.domain.channels import ChannelError, ChannelRegistry, ChannelSpec, Delivery
from legend.domain.history import StreamLog
from legend.domain.symbols import InvalidSymbol, normalize_ticker


@pytest.mark.parametrize(
    ("raw", "norm"), [("aapl", "AAPL"), (" brk.b ", "BRK.B"), ("bf-b", "BF-B"), ("^gspc", "^GSPC")]
)
def test_tickers_are_normalised(raw: str, norm: str) -> None:
    assert normalize_ticker(raw) == norm


@pytest.mark.parametrize("raw", ["", "   ", "AA$PL", "1ABC", "A..B", "ABC-", "X" * 13, "<script>", 5])
def test_bad_tickers_are_rejected(raw: object) -> None:
    with pytest.raises(InvalidSymbol):
        normalize_ticker(raw)


def test_registry_resolves_and_explains() -> None:
    registry = ChannelRegistry()
    spec, key = registry.resolve("ticker", "msft")
    assert key == "MSFT" and spec.streams(key, "u") == ("ticker:MSFT",)
    alerts, _ = registry.resolve("alerts", None)
    assert alerts.streams(None, "bob") == ("alerts", "alerts:user:bob")
    with pytest.raises(ChannelError, match="Unknown channel: chat"):
        registry.resolve("chat", None)
    with pytest.raises(ChannelError, match="Ticker required"):
        registry.resolve("ticker", None)
    with pytest.raises(ChannelError, match="takes no ticker"):
        registry.resolve("patterns", "AAPL")
    assert registry.spec_of_stream("alerts:user:bob") is alerts


def test_registry_refuses_duplicates_and_bad_names() -> None:
    registry = ChannelRegistry()
    spec = ChannelSpec(name="news", topic="news", delivery=Delivery.RELIABLE, message_types=("news",))
    registry.register(spec)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(spec)
    with pytest.raises(ValueError, match="invalid channel name"):
        registry.register(ChannelSpec(name="a:b", topic="x", delivery=Delivery.RELIABLE, message_types=()))


def test_private_only_channel_has_no_public_stream() -> None:
    spec = ChannelSpec(
        name="portfolio", topic="portfolio", delivery=Delivery.RELIABLE, message_types=("portfolio_update",),
        private=True, public_stream=False,
    )  # fmt: skip
    assert spec.streams(None, "amy") == ("portfolio:user:amy",)


def body(i: int) -> bytes:
    return b'{"type":"x","channel":"s","i":%d}' % i


def test_stream_log_sequences_and_bounds_history() -> None:
    log = StreamLog()
    envelopes = [log.append("s", "x", body(i), history_size=3) for i in range(5)]
    assert [e.seq for e in envelopes] == [1, 2, 3, 4, 5]
    kept, complete = log.after("s", None)
    assert [e.seq for e in kept] == [3, 4, 5] and complete
    assert [e.seq for e in log.after("s", 3)[0]] == [4, 5] and log.after("s", 3)[1]
    assert log.after("s", 2)[1] is True  # 3 is the next one and it is kept
    assert log.after("s", 1) == (kept, False)  # 2 is gone: not recovered
    assert log.after("s", 5) == ([], True)
    assert log.after("s", 9) == (kept, False)  # the stream restarted below the client's position
    assert log.after("never", None) == ([], True)
    assert log.after("never", 0) == ([], True)


def test_history_size_zero_keeps_sequence_only() -> None:
    log = StreamLog()
    log.append("s", "x", body(1), history_size=0)
    assert log.last_seq("s") == 1 and log.after("s", None) == ([], True)


def test_stream_log_forgets_the_least_recently_published_streams() -> None:
    log = StreamLog(max_streams=3)
    for name in ("a", "b", "c", "a", "d"):
        log.append(name, "x", b'{"type":"x","channel":"%s"}' % name.encode(), history_size=5)
    assert log.streams() == 3 and log.last_seq("b") == 0 and log.last_seq("a") == 2
    assert log.after("b", 1) == ([], False)  # a client resuming a forgotten stream is told so
