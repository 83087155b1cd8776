"""schemathesis on the OpenAPI schema a real ``legend serve`` serves (``/docs/openapi.json``): every
operation, with the admin token and a user identity on every request so that the authenticated routes do
their work instead of refusing.

What must hold: no 5xx, ever; every 4xx is the project's JSON error (``{"status_code", "detail"}`` with
the status it came with, and for a 400 ``extra`` entries with a ``key`` and a ``message``; when the
message names a field, ``key`` is that field or the path to it, never the generic ``data``). Examples
come from the schema (valid data) and against it (invalid data: the ``negative`` mode).
HYPOTHESIS_PROFILE=long runs a hundred times as many per operation (tests/support/fuzzing.py,
docs/reliability.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode

from tests.support.fuzzing import examples
from tests.support.server import ADMIN_TOKEN, LegendServer

# The admin token for admin routes, the development identity (security.auth = "dev") for the user's own
# routes: both on every request.
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-User-Id": "fuzzer"}
_NAMES_A_FIELD = re.compile(r"(?:missing required field|unknown field) `([^`]*)`")


@pytest.fixture(scope="module")
def api_server() -> Iterator[LegendServer]:
    with LegendServer({"realtime": {"update_interval": 3600, "after_hours_interval": 3600}}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api_schema(api_server: LegendServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_server.url}/docs/openapi.json")


def check_clear_error(status: int, body: Any) -> None:
    """A 4xx the way the project answers them (tests/unit/test_documented_errors.py, README)."""
    assert isinstance(body, dict), body
    assert body.get("status_code") == status, body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if status == 400 and "extra" in body:
        assert isinstance(body["extra"], list) and body["extra"], body
        for item in body["extra"]:
            assert isinstance(item.get("message"), str) and item["message"], body
            assert isinstance(item.get("key"), str), body
            named = _NAMES_A_FIELD.search(item["message"])
            if named:  # the field, or the path to it ("positions[0].quantity")
                name, key = named.group(1), item["key"]
                assert key == name or key.endswith(f".{name}"), (
                    f"the field is named in the message only: {body}"
                )


# Operations that make data first, so that those that read, change and delete it find some.
_ORDER = {"POST": 0, "PUT": 1, "GET": 2, "PATCH": 3, "DELETE": 4}
TICKERS = ("AAPL", "msft", "BRK.B", "^GSPC", " spy ")


_FIELD_NAME = re.compile(r"[a-z_]+")
# Values the domain accepts (the schema says only "number"): a price level, a volume and a day change
# percent alike for ``threshold``; a holding for ``quantity`` and ``average_cost``.
_PLAUSIBLE = {"threshold": (1, 50), "quantity": (1, 1000), "average_cost": (1, 1000)}


def steer(case: Case, ticker: str, rule_id: int, number: int) -> Case:
    """A valid case with a real ticker, numbers the domain accepts, the id of a rule that may exist and
    none of the extra fields the schema does not forbid (the server does), so that valid data gets past
    validation to the work behind it."""
    path = case.path_parameters
    if path is not None:
        if "ticker" in path:
            path["ticker"] = ticker.strip()
        if "rule_id" in path:
            path["rule_id"] = rule_id
    body = case.body
    if isinstance(body, dict):
        for key in [k for k in body if not _FIELD_NAME.fullmatch(k)]:
            del body[key]
        objects = [body, *(p for p in body.get("positions") or () if isinstance(p, dict))]
        for obj in objects:
            for key in [k for k in obj if not _FIELD_NAME.fullmatch(k)]:
                del obj[key]
            if "ticker" in obj:
                obj["ticker"] = ticker
            for key, (low, high) in _PLAUSIBLE.items():
                if key in obj:
                    obj[key] = float(min(max(number, low), high))
    return case


def cases(operation: APIOperation, mode: GenerationMode) -> st.SearchStrategy[Case]:
    generated = operation.as_strategy(generation_mode=mode, headers=HEADERS)
    if mode is GenerationMode.NEGATIVE:
        return generated
    steered = st.builds(steer, generated, st.sampled_from(TICKERS), st.integers(1, 6), st.integers(1, 1000))
    return generated | steered


def check_response(case: Case, base_url: str) -> None:
    response = case.call(base_url=base_url, headers=HEADERS, timeout=10)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:500]}"
    assert status < 500, where
    if 400 <= status < 500:
        types = [v for k, vs in response.headers.items() if k.lower() == "content-type" for v in vs]
        assert types and types[0].startswith("application/json"), where
        check_clear_error(status, response.json())


def test_no_operation_answers_5xx_and_every_4xx_says_why(
    api_schema: schemathesis.BaseSchema, api_server: LegendServer
) -> None:
    """Each operation in turn, valid data then invalid; the failures of all of them are reported together
    (hypothesis prints each one's smallest failing case)."""
    failures: list[str] = []
    operations = sorted(
        (r.ok() for r in api_schema.get_all_operations()), key=lambda o: _ORDER[o.method.upper()]
    )
    assert len(operations) >= 30  # every route of the app and its built-in plugins
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @examples(12)
            @given(case=cases(operation, mode))
            def one(case: Case) -> None:
                check_response(case, api_server.url)

            try:
                one()
            except Unsatisfiable:  # nothing to get wrong (GET /health has no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except AssertionError as exc:
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
