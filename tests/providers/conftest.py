"""Fixtures for the provider tests: a local vendor server per test and a fake time source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.providers.support import FakeTime, VendorServer


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with closing(VendorServer()) as srv:
        yield srv


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
