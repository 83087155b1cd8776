"""Legend's own figures between windows: the bar builder's (``bars`` of ``GET /api/ws/stats``).

They show that the prices the bench publishes really go into bars where bars are on (the builder reads the
price log, which every published ``price_update`` enters), so that "bars on against bars off" measures
bar building. Read before and after a window, never during the measured seconds.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from bench.fanout.procs import HOST


def _get(port: int, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/api/ws/stats", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10.0) as answer:
        figures: dict[str, Any] = json.loads(answer.read())
    return figures


async def bar_figures(port: int, token: str) -> dict[str, Any]:
    """The server's ``bars`` figures: ``{"enabled": false}`` where bars are off (``bars.enabled``), and
    where the server builds none at all (a checkout from before bars, ``--legend-root``)."""
    figures = await asyncio.to_thread(_get, port, token)
    bars: dict[str, Any] = figures.get("bars", {"enabled": False})
    return bars


async def prices_built(port: int | None, token: str) -> int | None:
    """The prices the server's bar builder has built so far; None where it builds none (or ``port`` is None)."""
    if port is None:
        return None
    bars = await bar_figures(port, token)
    return int(bars["prices_built"]) if bars.get("enabled") else None
