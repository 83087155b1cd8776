"""The replay provider on a shared position (what the Redis cluster gives it, ``SharedPositions``): a second
instance taking polling over continues the series, in bars per fetch and in bars per second; when the
position cannot be reached the replay goes on from the instance's own clock. The Redis script behind the
port is tested in tests/contract/test_redis_backplane.py."""

from __future__ import annotations

from pathlib import Path

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.quotes import ReplayQuoteProvider, ReplaySource
from legend.ports.backplane import BackplaneUnavailable
from legend.ports.cluster import SharedPositions

ROWS = "".join(f"2024-03-04 10:{m:02d},{m + 1},{m + 2},{m},{m + 1},1\n" for m in range(60))


class Positions:
    """Positions in a dict, moved on as position.lua moves them (the clock stands for Redis's)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.saved: dict[str, tuple[float, float]] = {}
        self.down = False

    async def advance_position(self, name: str, by_time: bool, own: float) -> float:
        if self.down:
            raise BackplaneUnavailable("redis position failed")
        now = self.clock.now().timestamp()
        position = own
        if name in self.saved:
            last, at = self.saved[name]
            position = max(own, last + max(0.0, now - at) if by_time else last + 1)
        self.saved[name] = (position, now)
        return position


def sixty(tmp_path: Path) -> Path:
    path = tmp_path / "sixty.csv"
    path.write_text("Datetime,Open,High,Low,Close,Volume\n" + ROWS, encoding="utf-8")
    return path


async def volume(replay: ReplayQuoteProvider) -> int:
    return (await replay.fetch(["X"]))[0].volume  # bar n has volume n + 1


def instance(path: Path, positions: Positions, **options: object) -> ReplayQuoteProvider:
    assert isinstance(positions, SharedPositions)
    replay = ReplayQuoteProvider(
        {"X": ReplaySource(path)}, clock=positions.clock, positions=positions, **options
    )  # type: ignore[arg-type]
    return replay


async def test_a_takeover_continues_the_series_one_bar_a_fetch(tmp_path: Path) -> None:
    positions = Positions(FrozenClock())
    first, second = instance(sixty(tmp_path), positions), instance(sixty(tmp_path), positions)
    assert [await volume(first) for _ in range(3)] == [1, 2, 3]
    assert [await volume(second) for _ in range(2)] == [4, 5]  # not 1, 2: where the first left it
    assert await volume(first) == 6  # the old holder coming back moves on from there, never back
    assert first.position("X")["bar"] == 5  # type: ignore[index]


async def test_a_takeover_continues_the_series_in_bars_per_second(tmp_path: Path) -> None:
    clock = FrozenClock()
    positions = Positions(clock)
    path = sixty(tmp_path)
    first, second = (instance(path, positions, advance="time", speed=2) for _ in range(2))
    assert await volume(first) == 1
    clock.advance(5)
    assert await volume(first) == 11  # 5 s at 2 bars a second
    clock.advance(3)  # the first dies; the second takes over 3 s later
    assert await volume(second) == 17  # bar 10 + 6, not its own first bar
    clock.advance(1)
    assert await volume(second) == 19


async def test_without_the_shared_position_the_replay_goes_on_from_its_own_clock(tmp_path: Path) -> None:
    positions = Positions(FrozenClock())
    replay = instance(sixty(tmp_path), positions)
    assert [await volume(replay) for _ in range(2)] == [1, 2]
    positions.down = True
    assert [await volume(replay) for _ in range(2)] == [3, 4]  # a fetch never fails for it
    positions.down = False
    assert await volume(replay) == 5  # back on the shared one, not sent back to where it was saved
    second = instance(sixty(tmp_path), positions)
    assert await volume(second) == 6  # and a takeover continues from there
