"""Tickers are ASCII before any case change: Unicode letters that upper-case into a real symbol
('ıbm' -> 'IBM', 'ﬀ' -> 'FF', 'ß' -> 'SS', 'ſ' -> 'S') are refused everywhere a ticker comes in."""

from __future__ import annotations

import msgspec
import pytest

from legend.domain.channels import ChannelError, ChannelRegistry
from legend.domain.inputs import PriceInput
from legend.domain.symbols import InvalidSymbol, normalize_ticker

LOOKALIKES = ["ıbm", "ﬀ", "ß", "ſ", "ＡＡＰＬ", "aapl\u200b"]


@pytest.mark.parametrize("raw", LOOKALIKES)
def test_lookalikes_are_not_tickers(raw: str) -> None:
    with pytest.raises(InvalidSymbol, match="ASCII"):
        normalize_ticker(raw)


@pytest.mark.parametrize("raw", LOOKALIKES)
def test_lookalikes_are_refused_by_subscriptions_and_broadcasts(raw: str) -> None:
    with pytest.raises(ChannelError):
        ChannelRegistry().resolve("ticker", raw)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"ticker": raw, "price": 1.0}, PriceInput)


def test_plain_tickers_still_normalise() -> None:
    assert normalize_ticker("  brk.b ") == "BRK.B"
    assert ChannelRegistry().resolve("ticker", "aapl")[1] == "AAPL"
