"""``set_within``: the bounded wait the price logs and the quote poller share."""

from __future__ import annotations

import asyncio

from legend.runtime.events import set_within


async def test_set_within_says_whether_the_event_came_in_time() -> None:
    event = asyncio.Event()
    assert await set_within(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, 5.0) is True
    assert await set_within(event, 0) is True  # already set: no wait, whatever the bound
