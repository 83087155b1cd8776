"""Real ``legend serve`` processes for protocol tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import LegendServer

# Long intervals: the quote poller polls once when a ticker is first subscribed, then stays quiet, so
# tests that drive prices themselves see only their own (after waiting for that first price).
QUIET = {"realtime": {"update_interval": 3600, "after_hours_interval": 3600}}


@pytest.fixture(scope="module")
def server() -> Iterator[LegendServer]:
    with LegendServer(QUIET) as srv:
        yield srv


@pytest.fixture
def admin(server: LegendServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.admin, timeout=10) as client:
        yield client
