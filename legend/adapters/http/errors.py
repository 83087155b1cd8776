"""The REST error answers, in Litestar's own shape: ``{"status_code": 400, "detail": "...", "extra": [...]}``.

One place builds them, for the core API, the plugins (``legend.plugins.web`` re-exports these) and the
raw ASGI answers outside Litestar's handlers:

- ``invalid(("ticker", "Invalid ticker: 'A$'"))``: a 400 naming each invalid field (``key``, ``message``,
  ``source``), the shape Litestar gives its own validation errors;
- ``field_errors``: the exception handler that answers a ValidationException in that shape, naming the
  field where Litestar says only ``data``;
- ``Conflict``: a 409 (Litestar ships no class for it; 503 is its ``ServiceUnavailableException``);
- ``error_body`` / ``error_json``: the body itself, for answers built by hand.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_409_CONFLICT

__all__ = ["Conflict", "FieldErrorItem", "error_body", "error_json", "field_error", "field_errors", "invalid"]

# (key, message) or (key, message, source): one invalid field of a request
FieldErrorItem = tuple[str, str] | tuple[str, str, str]


class Conflict(HTTPException):
    """409: the request is valid but collides with what is stored (a cap reached, a duplicate)."""

    status_code = HTTP_409_CONFLICT


def error_body(status_code: int, detail: str, extra: Any = None) -> dict[str, Any]:
    """The JSON body of an error answer; ``extra`` only when there is one."""
    body: dict[str, Any] = {"status_code": status_code, "detail": detail}
    if extra:
        body["extra"] = extra
    return body


def error_json(status_code: int, detail: str) -> bytes:
    """``error_body`` encoded, for an answer sent below Litestar (an ASGI middleware)."""
    return msgspec.json.encode(error_body(status_code, detail))


def field_error(key: str, message: str, source: str = "body") -> dict[str, str]:
    """One entry of ``extra``: the field, what is wrong with it, and where it was (body, path, query)."""
    return {"key": key, "message": message, "source": source}


def invalid(*errors: FieldErrorItem, source: str = "body") -> ValidationException:
    """A 400 naming each invalid field: ``raise invalid(("ticker", "Invalid ticker: 'A$'"))``; a third item
    gives that error's own source (``"path"``, ``"query"``, ``"body"``)."""
    return ValidationException(
        detail="Validation failed",
        extra=[field_error(e[0], e[1], e[2] if len(e) > 2 else source) for e in errors],
    )


_NAMED_FIELD = re.compile(r"(?:missing required field|unknown field) `([^`]*)`")


def field_errors(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Litestar's 400, with the missing or unknown field named in ``key``: where Litestar says only
    ``data`` (``"open"``), or only the object that lacks it (``"positions[0]"`` becomes
    ``"positions[0].quantity"``, as the domain's own errors name it)."""
    extra = exc.extra
    if isinstance(extra, list):
        fixed: list[Any] = []
        for item in extra:
            key = item.get("key") if isinstance(item, dict) else None
            found = _NAMED_FIELD.search(str(item.get("message", ""))) if isinstance(key, str) else None
            if found and isinstance(key, str):
                name = found.group(1)
                if key == "data":
                    item = {**item, "key": name}
                elif key != name and not key.endswith(f".{name}"):
                    item = {**item, "key": f"{key}.{name}"}
            fixed.append(item)
        extra = fixed
    return Response(error_body(exc.status_code, exc.detail, extra), status_code=exc.status_code)
