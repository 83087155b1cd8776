"""Fuzz tests: the hypothesis profile (HYPOTHESIS_PROFILE, tests/support/fuzzing.py) is loaded first;
the long profile runs for as long as it takes (no per-test timeout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fuzzing import PROFILE

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if PROFILE == "long":
        for item in items:
            if HERE in item.path.parents:
                item.add_marker(pytest.mark.timeout(0))
