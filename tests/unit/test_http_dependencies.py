"""Handlers get the services they use by name (one Litestar ``Provide`` each): no such name may also be a
field or parameter of the handler's request, and the plugins' routes see none of the server's services."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

from legend.app import create_app
from legend.settings import DatabaseSettings, Settings


def build(tmp_path: Path) -> Litestar:
    return create_app(Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db")))


def _fields(schema: dict[str, Any], spec: dict[str, Any]) -> set[str]:
    """Top-level property names of a request body schema ($ref and unions followed)."""
    ref = schema.get("$ref")
    if ref:
        return _fields(spec["components"]["schemas"][ref.rsplit("/", 1)[-1]], spec)
    names = set(schema.get("properties", {}))
    for union in ("oneOf", "anyOf", "allOf"):
        for part in schema.get(union, ()):
            names |= _fields(part, spec)
    return names


def test_no_dependency_is_named_like_a_field_or_parameter_of_its_handler(tmp_path: Path) -> None:
    """Litestar answers a validation error under a dependency's name with 500 (a failed dependency), not
    400: ``{"status": "sideways"}`` to the market status broadcast once did, while a service was provided
    as ``status``."""
    app = build(tmp_path)
    spec = app.openapi_schema.to_schema()
    clashes = []
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = spec["paths"].get(path, {}).get(method.lower())
                if operation is None:
                    continue  # not in the schema (the dashboard, static files)
                fields = {parameter["name"] for parameter in operation.get("parameters", ())}
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    fields |= _fields(content["schema"], spec)
                checked += 1
                clashes += [
                    f"{method} {path}: {name}" for name in set(handler.resolve_dependencies()) & fields
                ]
    assert checked > 20
    assert not clashes, clashes


def test_plugin_routes_see_only_their_context_and_the_authenticator(tmp_path: Path) -> None:
    app = build(tmp_path)
    seen: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(("/api/news", "/api/portfolio")):
            for handler in route.route_handlers:
                seen[route.path] = set(handler.resolve_dependencies())
    assert seen, "the built-in plugins' routes are mounted"
    for path, names in seen.items():
        assert names <= {"plugin", "authenticator", "user_id"}, (path, names)
