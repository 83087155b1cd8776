"""``run_workers``: a SIGTERM while the workers are being launched stops the launching at once, stops the
ones started and evicts them, and the supervisor returns. Stand-in workers; the real ones are in
tests/cluster/test_workers.py."""

from __future__ import annotations

import signal
import subprocess
import time

import msgspec
import pytest

from legend import server
from legend.settings import RedisSettings, SecuritySettings, Settings
from tests.support.server import free_port


class StandIn:
    """A worker that never was: the first one launched gets the supervisor a SIGTERM."""

    launched: list[int] = []
    signalled: list[tuple[int, int]] = []

    def __init__(self, settings: Settings, index: int) -> None:
        self.index, self.instance_id, self.pidfd, self.started = index, f"w{index}", None, time.monotonic()
        self.code: int | None = None
        self.process, self.pid = self, 0
        StandIn.launched.append(index)
        if index == 1:
            signal.raise_signal(signal.SIGTERM)  # as if sent while the second worker starts

    @property
    def exitcode(self) -> int | None:
        return self.code

    def signal(self, signum: int) -> None:
        StandIn.signalled.append((self.index, signum))
        self.code = -signum

    def wait(self, timeout: float | None = None) -> int:
        if self.code is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0)
        return self.code

    def close(self) -> None:
        pass


def test_sigterm_while_launching_stops_the_launching_and_the_started(monkeypatch: pytest.MonkeyPatch) -> None:
    evicted: list[list[str]] = []
    StandIn.launched, StandIn.signalled = [], []
    monkeypatch.setattr(server, "_Worker", StandIn)
    monkeypatch.setattr(server, "_prepare", lambda settings: settings)
    monkeypatch.setattr(server, "_evict", lambda evict, settings, ids: evicted.append(ids))
    base = Settings(
        redis=RedisSettings(url="redis://127.0.0.1:1"), security=SecuritySettings(admin_token="t")
    )
    settings = msgspec.structs.replace(
        base, server=msgspec.structs.replace(base.server, workers=4, port=free_port())
    )
    previous = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    assert server.run_workers(settings) == 0
    assert time.monotonic() - started < 5
    assert StandIn.launched == [0, 1]  # not 2 and 3
    assert sorted(StandIn.signalled) == [(0, signal.SIGTERM), (1, signal.SIGTERM)]
    assert evicted == [["w0", "w1"]]
    assert signal.getsignal(signal.SIGTERM) is previous
