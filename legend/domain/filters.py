"""Subscription filters: which of a channel's messages one subscription wants (docs/protocol.md, Filters).

A filter is a small JSON expression over a message's top-level fields, compiled once into a predicate:
``{"<field>": {"<op>": value, ...}, ...}`` (every field listed must hold) with the ops of ``OPS``, combined
with ``{"and": [...]}``, ``{"or": [...]}`` and ``{"not": ...}``, plus ``{"ticker": "watchlist"}``: the
message's ticker is on the subscriber's watchlist, which the caller passes in as it is now. Pure: the
predicate reads a decoded message and a watchlist, nothing else.

Comparisons never mix kinds: ``true`` is not ``1``, ``"5"`` is not ``5``; ``gt``/``gte``/``lt``/``lte``
compare numbers with numbers and strings with strings, else they do not hold. A missing field holds only
``ne``, ``not_in`` and ``{"exists": false}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from weakref import WeakValueDictionary

import msgspec

Test = Callable[[Mapping[str, Any], frozenset[str]], bool]

OPS: Final = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists")
COMBINATORS: Final = ("and", "or", "not")
WATCHLIST: Final = "watchlist"

MAX_DEPTH: Final = 6  # nested and/or/not objects
MAX_TERMS: Final = 64  # field conditions and combinators in one filter
MAX_LIST: Final = 256  # values of one in/not_in, filters of one and/or
MAX_STRING: Final = 256  # characters of a string value
MAX_FIELD: Final = 64  # characters of a field name

_MISSING: Final = object()


class FilterError(ValueError):
    """A filter refused: ``where`` names the part (``filter.or[1].score.gte``), ``reason`` says why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class MessageFilter:
    """A compiled filter. ``spec`` is the filter as the client sent it (echoed in the reply); ``key`` is its
    canonical JSON, the same for equal filters however their keys were ordered: subscribers are grouped by
    it so a filter is evaluated once per message, whatever the number of connections sharing it."""

    spec: dict[str, Any]
    key: str
    test: Test
    follows_watchlist: bool
    terms: int

    def matches(self, message: Mapping[str, Any], watchlist: frozenset[str] = frozenset()) -> bool:
        return self.test(message, watchlist)


# Every compiled filter in use, by key: 5,000 connections over 50 distinct filters hold 50 compiled
# filters, not 5,000 (about 2.6 KB each, measured: docs/performance.md, Filters). Forgotten when unused.
_compiled: WeakValueDictionary[str, MessageFilter] = WeakValueDictionary()


_decode_message = msgspec.json.Decoder(dict[str, Any]).decode


def message_fields(text: str) -> dict[str, Any]:
    """A channel message's top-level fields, as filters read them, from its JSON text (``{}`` for text that
    is not a JSON object: only a filter that asks for nothing could match it)."""
    try:
        return _decode_message(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}


def compile_filter(raw: object) -> MessageFilter | None:
    """The compiled filter of a subscribe's ``filter`` (None for none, or ``{}``: every message), shared
    with every other subscription of an equal filter; FilterError naming the part refused."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FilterError("filter", 'must be a JSON object such as {"score": {"gte": 8}}')
    if not raw:
        return None
    try:
        key: str | None = msgspec.json.encode(raw, order="sorted").decode()
    except (TypeError, ValueError, RecursionError):  # not JSON's values: compiling says which part
        key = None
    found = _compiled.get(key) if key is not None else None
    if found is not None:
        return found
    compiler = _Compiler()
    test = compiler.expression(raw, "filter", 1)
    assert key is not None  # what compiles is JSON
    compiled = MessageFilter(raw, key, test, compiler.watchlist, compiler.terms)
    _compiled[key] = compiled
    return compiled


def either(first: MessageFilter | None, second: MessageFilter | None) -> MessageFilter | None:
    """One filter holding where either does (None, every message, when either is None): two subscriptions
    to one channel with different filters are one subscription with the ``or`` of both."""
    if first is None or second is None:
        return None
    if first.key == second.key:
        return first
    branches: list[Any] = []
    for part in (first, second):
        spec = part.spec
        branches.extend(spec["or"] if list(spec) == ["or"] else [spec])
    unique = list({msgspec.json.encode(b, order="sorted"): b for b in branches}.values())
    return compile_filter({"or": unique})


# ───────────────────────────── compiling ─────────────────────────────


def _kind(value: object) -> str | None:
    """The comparison kind of a JSON scalar: booleans, numbers, strings and null never compare equal."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return None


def _token(value: object) -> tuple[str, object] | None:
    """A hashable stand-in for a scalar, equal only for values of one kind (``in``'s set lookup)."""
    kind = _kind(value)
    if kind is None:
        return None
    return (kind, value)  # 1 and 1.0 are equal and hash alike: no conversion needed


class _Compiler:
    def __init__(self) -> None:
        self.terms = 0
        self.watchlist = False

    def _count(self, where: str) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(where, f"too many conditions: at most {MAX_TERMS} in one filter")

    def expression(self, node: object, where: str, depth: int) -> Test:
        if not isinstance(node, dict) or not node:
            raise FilterError(where, "must be a non-empty JSON object")
        if depth > MAX_DEPTH:
            raise FilterError(where, f"nested too deeply: at most {MAX_DEPTH} levels")
        tests = [self.entry(name, value, where, depth) for name, value in node.items()]
        return _all(tests)

    def entry(self, name: str, value: object, where: str, depth: int) -> Test:
        here = f"{where}.{name}"
        if name in ("and", "or"):
            self._count(here)
            if not isinstance(value, list) or not value:
                raise FilterError(here, "must be a non-empty list of filters")
            if len(value) > MAX_LIST:
                raise FilterError(here, f"too many filters: at most {MAX_LIST}")
            parts = [self.expression(part, f"{here}[{i}]", depth + 1) for i, part in enumerate(value)]
            return _all(parts) if name == "and" else _any(parts)
        if name == "not":
            self._count(here)
            inner = self.expression(value, here, depth + 1)
            return lambda message, watchlist: not inner(message, watchlist)
        if len(name) > MAX_FIELD:
            raise FilterError(
                f"{where}.{name[:MAX_FIELD]}…", f"a field name has at most {MAX_FIELD} characters"
            )
        if not name:
            raise FilterError(here, "a field name must not be empty")
        if value == WATCHLIST and name == "ticker":
            self._count(here)
            self.watchlist = True
            return _on_watchlist
        if not isinstance(value, dict) or not value:
            hint = ' or "watchlist"' if name == "ticker" else ""
            raise FilterError(here, f'must be a condition object such as {{"eq": value}}{hint}')
        tests = []
        for op, operand in value.items():
            self._count(f"{here}.{op}")
            tests.append(self.condition(name, op, operand, f"{here}.{op}"))
        return _all(tests)

    def condition(self, field: str, op: str, operand: object, where: str) -> Test:
        if op == "exists":
            if not isinstance(operand, bool):
                raise FilterError(where, "must be true or false")
            if operand:
                return lambda message, _w: field in message
            return lambda message, _w: field not in message
        if op in ("eq", "ne"):
            token = self.scalar(operand, where)
            if op == "eq":
                return lambda message, _w: _token(message.get(field, _MISSING)) == token
            return lambda message, _w: _token(message.get(field, _MISSING)) != token
        if op in ("in", "not_in"):
            if not isinstance(operand, list) or not operand:
                raise FilterError(where, "must be a non-empty list of values")
            if len(operand) > MAX_LIST:
                raise FilterError(where, f"too many values: at most {MAX_LIST}")
            tokens = frozenset(self.scalar(v, f"{where}[{i}]") for i, v in enumerate(operand))
            if op == "in":
                return lambda message, _w: _token(message.get(field, _MISSING)) in tokens
            return lambda message, _w: _token(message.get(field, _MISSING)) not in tokens
        if op in ("gt", "gte", "lt", "lte"):
            return self.order(field, op, operand, where)
        raise FilterError(where, f"unknown operator {op[:40]!r}: one of {', '.join(OPS)}")

    def scalar(self, value: object, where: str) -> tuple[str, object]:
        token = _token(value)
        if token is None:
            raise FilterError(where, "must be a string, number, true, false or null")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise FilterError(where, f"a string has at most {MAX_STRING} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise FilterError(where, "must be a finite number")
        return token

    def order(self, field: str, op: str, operand: object, where: str) -> Test:
        kind = _kind(operand)
        if kind not in ("number", "string"):
            raise FilterError(where, "must be a number or a string")
        self.scalar(operand, where)
        bound: Any = operand
        numeric = kind == "number"

        def comparable(value: object) -> bool:
            if numeric:
                return isinstance(value, int | float) and not isinstance(value, bool)
            return isinstance(value, str)

        if op == "gt":
            return lambda m, _w: comparable(v := m.get(field)) and v > bound
        if op == "gte":
            return lambda m, _w: comparable(v := m.get(field)) and v >= bound
        if op == "lt":
            return lambda m, _w: comparable(v := m.get(field)) and v < bound
        return lambda m, _w: comparable(v := m.get(field)) and v <= bound


def _on_watchlist(message: Mapping[str, Any], watchlist: frozenset[str]) -> bool:
    ticker = message.get("ticker")
    return isinstance(ticker, str) and ticker in watchlist


def _all(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    return lambda message, watchlist: all(t(message, watchlist) for t in tests)


def _any(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    return lambda message, watchlist: any(t(message, watchlist) for t in tests)
