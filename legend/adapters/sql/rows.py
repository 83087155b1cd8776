"""Table rows to and from the model's structs, and batched statements, whatever the table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy.engine import CursorResult, Row

CHUNK = 500  # ids per IN list: far below SQLite's and asyncpg's parameter limits

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no primary key for an insert")
    return int(key[0])


def from_row(struct: type[S], row: Row[Any], /, **given: Any) -> S:
    """A ``struct`` from the row's columns named like its fields; ``given`` values instead for the fields
    whose column needs converting (an enum, a literal) or has another name."""
    columns = row._mapping
    fields = struct.__struct_fields__
    return struct(**{name: given[name] if name in given else columns[name] for name in fields})
