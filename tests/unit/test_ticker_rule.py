"""The ticker rule is written once: the msgspec Ticker type of request bodies accepts what normalize_ticker
accepts, and the OpenAPI schema shows the same rule as before."""

from __future__ import annotations

import typing

import msgspec
import pytest

from legend.domain.inputs import PriceInput
from legend.domain.symbols import TICKER_RULE, InvalidSymbol, Ticker, normalize_ticker

SYMBOLS = ["AAPL", "aapl", " msft ", "BRK.B", "bf-b", "^GSPC", "^gspc", "A1", "X.Y.Z", "A-1.B",
           "", " ", "1A", "A$", "A..B", "A.", "-A", "^", "^^A", "A B", "ıbm", "ABCDEFGHIJKLM", "ABCDEFGHIJKL"]  # fmt: skip


@pytest.mark.parametrize("raw", SYMBOLS)
def test_the_ticker_type_accepts_what_normalize_ticker_accepts(raw: str) -> None:
    try:
        expected: str | None = normalize_ticker(raw)
    except InvalidSymbol:
        expected = None
    body = {"ticker": raw, "price": 1.0}
    try:
        got: str | None = msgspec.convert(body, PriceInput).ticker
    except (msgspec.ValidationError, InvalidSymbol):
        got = None
    assert got == expected


def test_the_ticker_type_shows_the_one_rule_in_the_schema() -> None:
    meta = typing.get_args(Ticker)[1]
    assert meta.pattern == r"^\s*\^?[A-Za-z][A-Za-z0-9]*(?:[.\-][A-Za-z0-9]+)*\s*$"  # as published before
    assert TICKER_RULE.replace("A-Z", "A-Za-z") in meta.pattern
