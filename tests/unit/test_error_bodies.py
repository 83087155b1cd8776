"""Every REST error body is built by legend.adapters.http.errors, in Litestar's shape, and plugins get the
same helpers from legend.plugins.web."""

from __future__ import annotations

import legend.plugins.web as web
from legend.adapters.http.errors import Conflict, error_body, error_json, invalid


def test_error_bodies_have_litestars_shape() -> None:
    assert error_body(503, "down") == {"status_code": 503, "detail": "down"}
    assert error_json(404, "no") == b'{"status_code":404,"detail":"no"}'
    exc = invalid(("ticker", "Invalid ticker: 'A$'"), ("quantity", "must not be 0", "path"), source="query")
    assert (exc.status_code, exc.detail) == (400, "Validation failed")
    assert exc.extra == [
        {"key": "ticker", "message": "Invalid ticker: 'A$'", "source": "query"},
        {"key": "quantity", "message": "must not be 0", "source": "path"},
    ]
    assert Conflict(detail="full").status_code == 409


def test_plugins_import_the_same_helpers() -> None:
    assert web.invalid is invalid and web.Conflict is Conflict
