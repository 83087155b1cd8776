"""Subscription filters (``legend.domain.filters``): every operator, the combinators, the watchlist, the
kinds that never compare equal, and each limit refused with the part named."""

from __future__ import annotations

from typing import Any

import pytest

from legend.domain.filters import (
    MAX_DEPTH,
    MAX_LIST,
    MAX_TERMS,
    FilterError,
    compile_filter,
    either,
)

VCP = {"type": "pattern_alert", "ticker": "AAPL", "pattern_type": "VCP", "score": 8.5, "note": None}
FLAG = {"type": "pattern_alert", "ticker": "MSFT", "pattern_type": "Flag", "score": 6}


def holds(spec: dict[str, Any], message: dict[str, Any], watchlist: frozenset[str] = frozenset()) -> bool:
    compiled = compile_filter(spec)
    assert compiled is not None
    return compiled.matches(message, watchlist)


@pytest.mark.parametrize(
    ("condition", "vcp", "flag"),
    [
        ({"pattern_type": {"eq": "VCP"}}, True, False),
        ({"pattern_type": {"ne": "VCP"}}, False, True),
        ({"pattern_type": {"in": ["VCP", "Cup"]}}, True, False),
        ({"pattern_type": {"not_in": ["VCP", "Cup"]}}, False, True),
        ({"score": {"gt": 6}}, True, False),
        ({"score": {"gte": 6}}, True, True),
        ({"score": {"lt": 8.5}}, False, True),
        ({"score": {"lte": 8.5}}, True, True),
        ({"note": {"exists": True}}, True, False),  # present, even null
        ({"note": {"exists": False}}, False, True),
        ({"ticker": {"gte": "B"}}, False, True),  # strings compare with strings
        ({"score": {"eq": 6.0}}, False, True),  # 6 and 6.0 are one number
        ({"note": {"eq": None}}, True, False),
    ],
)
def test_each_operator(condition: dict[str, Any], vcp: bool, flag: bool) -> None:
    assert (holds(condition, VCP), holds(condition, FLAG)) == (vcp, flag)


def test_every_field_listed_must_hold_and_every_op_of_a_field() -> None:
    assert holds({"pattern_type": {"in": ["VCP"]}, "score": {"gte": 8}}, VCP)
    assert not holds({"pattern_type": {"in": ["VCP"]}, "score": {"gte": 9}}, VCP)
    assert holds({"score": {"gt": 8, "lt": 9}}, VCP)
    assert not holds({"score": {"gt": 8, "lt": 8.4}}, VCP)


def test_and_or_not_nest() -> None:
    either_one = {"or": [{"ticker": {"eq": "MSFT"}}, {"score": {"gte": 8}}]}
    assert holds(either_one, VCP) and holds(either_one, FLAG)
    assert not holds({"and": [either_one, {"pattern_type": {"eq": "Cup"}}]}, VCP)
    assert holds({"not": {"ticker": {"eq": "MSFT"}}}, VCP) and not holds(
        {"not": {"ticker": {"eq": "MSFT"}}}, FLAG
    )
    # a field beside a combinator: both must hold
    assert not holds({"ticker": {"eq": "AAPL"}, "or": [{"score": {"lt": 1}}]}, VCP)


def test_kinds_never_compare_equal_and_missing_fields_hold_only_the_negations() -> None:
    message = {"flag": True, "one": 1, "text": "5"}
    assert not holds({"one": {"eq": True}}, message) and not holds({"flag": {"eq": 1}}, message)
    assert not holds({"text": {"eq": 5}}, message) and not holds({"text": {"gt": 1}}, message)
    assert not holds({"flag": {"gte": 0}}, message)  # a boolean is not a number here
    assert not holds({"one": {"in": [True, "1"]}}, message)
    assert holds({"missing": {"ne": 1}}, message) and holds({"missing": {"not_in": [1]}}, message)
    for op, value in [("eq", 1), ("in", [1]), ("gt", 0), ("gte", 0), ("lt", 9), ("lte", 9), ("exists", True)]:
        assert not holds({"missing": {op: value}}, message), op
    assert not holds(
        {"nested": {"eq": 1}}, {"nested": {"a": 1}}
    )  # top-level fields only: objects never equal


def test_watchlist_follows_the_list_passed_in() -> None:
    compiled = compile_filter({"ticker": "watchlist"})
    assert compiled is not None and compiled.follows_watchlist
    assert compiled.matches(VCP, frozenset({"AAPL"})) and not compiled.matches(FLAG, frozenset({"AAPL"}))
    assert compiled.matches(FLAG, frozenset({"AAPL", "MSFT"}))
    assert not compiled.matches({"pattern_type": "VCP"}, frozenset({"AAPL"}))  # no ticker: not on it
    assert not compile_filter({"score": {"gt": 1}}).follows_watchlist  # type: ignore[union-attr]


def test_no_filter_and_the_empty_filter_are_every_message() -> None:
    assert compile_filter(None) is None and compile_filter({}) is None


def test_equal_filters_share_a_key_however_ordered() -> None:
    first = compile_filter({"score": {"gte": 8, "lt": 9}, "ticker": {"eq": "AAPL"}})
    second = compile_filter({"ticker": {"eq": "AAPL"}, "score": {"lt": 9, "gte": 8}})
    assert first is not None and second is not None and first.key == second.key
    assert first is second  # compiled once, shared by every subscription of an equal filter
    assert first.spec == {"score": {"gte": 8, "lt": 9}, "ticker": {"eq": "AAPL"}}  # echoed as sent


def test_either_is_the_or_of_both_flattened() -> None:
    vcp = compile_filter({"pattern_type": {"eq": "VCP"}})
    msft = compile_filter({"ticker": {"eq": "MSFT"}})
    both = either(vcp, msft)
    assert both is not None and both.matches(VCP) and both.matches(FLAG)
    assert not both.matches({"ticker": "TSLA", "pattern_type": "Cup"})
    assert either(both, vcp) is not None and either(both, vcp).spec == both.spec  # type: ignore[union-attr]
    third = either(both, compile_filter({"score": {"gt": 100}}))
    assert third is not None and len(third.spec["or"]) == 3  # flattened, not nested
    assert either(vcp, vcp) is vcp
    assert either(None, vcp) is None and either(vcp, None) is None  # unfiltered wins


@pytest.mark.parametrize(
    ("spec", "where", "says"),
    [
        ([1], "filter", "JSON object"),
        ({"score": 8}, "filter.score", "condition object"),
        ({"ticker": "AAPL"}, "filter.ticker", '"watchlist"'),
        ({"score": {}}, "filter.score", "condition object"),
        ({"score": {"near": 8}}, "filter.score.near", "unknown operator"),
        ({"score": {"gt": [1]}}, "filter.score.gt", "number or a string"),
        ({"score": {"gt": True}}, "filter.score.gt", "number or a string"),
        ({"score": {"eq": {"a": 1}}}, "filter.score.eq", "string, number"),
        ({"score": {"in": []}}, "filter.score.in", "non-empty list"),
        ({"score": {"in": [1, [2]]}}, "filter.score.in[1]", "string, number"),
        ({"score": {"exists": 1}}, "filter.score.exists", "true or false"),
        ({"or": []}, "filter.or", "non-empty list"),
        ({"or": [{"a": {"eq": 1}}, 3]}, "filter.or[1]", "non-empty JSON object"),
        ({"not": {}}, "filter.not", "non-empty JSON object"),
        ({"": {"eq": 1}}, "filter.", "must not be empty"),
        ({"a" * 65: {"eq": 1}}, "filter." + "a" * 64 + "…", "at most 64"),
        ({"a": {"eq": "x" * 257}}, "filter.a.eq", "at most 256"),
        ({"a": {"in": list(range(MAX_LIST + 1))}}, "filter.a.in", f"at most {MAX_LIST}"),
    ],
)
def test_refused_with_the_part_named(spec: Any, where: str, says: str) -> None:
    with pytest.raises(FilterError) as refused:
        compile_filter(spec)
    assert refused.value.where == where and says in refused.value.reason, str(refused.value)


def test_depth_and_size_are_limited() -> None:
    deep: dict[str, Any] = {"a": {"eq": 1}}
    for _ in range(MAX_DEPTH - 1):
        deep = {"not": deep}
    assert compile_filter(deep) is not None
    with pytest.raises(FilterError, match="nested too deeply"):
        compile_filter({"not": deep})
    wide = {f"f{i}": {"eq": i} for i in range(MAX_TERMS)}
    assert compile_filter(wide) is not None
    with pytest.raises(FilterError, match=f"at most {MAX_TERMS}") as refused:
        compile_filter({**wide, "extra": {"eq": 1}})
    assert refused.value.where == "filter.extra.eq"
    with pytest.raises(FilterError, match=f"at most {MAX_TERMS}"):  # the or of two can be over the limit
        either(compile_filter(wide), compile_filter({"other": {"eq": 1}}))
