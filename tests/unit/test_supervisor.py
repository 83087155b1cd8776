"""The supervisor with a fake sleep and a frozen clock: a loop that raises is restarted with a growing
backoff (back to the first delay after a healthy run), a policy may let it fail or end instead, stop is
bounded even for a task that ignores its cancellation, and the status says it all per task."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.bootstrap import bootstrap
from legend.runtime.supervisor import Restart, Supervised, TaskSupervisor
from legend.settings import DatabaseSettings, Settings
from tests.support.loop import settle

POLICY = Restart(initial=1.0, maximum=4.0, healthy_after=60.0)


class FakeSleep:
    """Records the restart delays and returns at once (after one turn of the loop)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class Script:
    """A loop whose runs do what the test says: each run takes the next step from a queue (an exception
    to raise, a number of seconds to let pass on the clock, or None to return)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.steps: asyncio.Queue[BaseException | float | None] = asyncio.Queue()
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        while True:
            step = await self.steps.get()
            if isinstance(step, BaseException):
                raise step
            if step is None:
                return
            self.clock.advance(step)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def supervisor(clock: FrozenClock, sleep: FakeSleep) -> TaskSupervisor:
    return TaskSupervisor(monotonic=clock.monotonic, sleep=sleep, stop_timeout=5.0)


async def test_a_loop_that_raises_is_restarted_with_a_growing_backoff(
    supervisor: TaskSupervisor, sleep: FakeSleep, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(clock)
    task = supervisor.start("poller", script.run, restart=POLICY)
    assert task.state == "running"
    for n in range(5):
        script.steps.put_nowait(ConnectionError(f"down {n}"))
    await settle(lambda: task.restarts == 5 and task.state == "running")
    assert sleep.delays == [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert script.runs == 6
    assert supervisor.status() == {
        "poller": {"state": "running", "restarts": 5, "failures": 5, "last_error": "ConnectionError: down 4"}
    }
    assert "poller failed; restarting in 1.00 s" in caplog.text and "ConnectionError: down 0" in caplog.text
    await supervisor.stop()
    assert task.state == "stopped" and task.done


async def test_a_run_that_lasted_healthy_after_restarts_after_the_first_delay_again(
    supervisor: TaskSupervisor, sleep: FakeSleep, clock: FrozenClock
) -> None:
    script = Script(clock)
    task = supervisor.start("poller", script.run, restart=POLICY)
    for step in (RuntimeError("a"), RuntimeError("b"), RuntimeError("c")):
        script.steps.put_nowait(step)
    await settle(lambda: task.restarts == 3)
    script.steps.put_nowait(59.0)  # not long enough
    script.steps.put_nowait(RuntimeError("d"))
    await settle(lambda: task.restarts == 4)
    script.steps.put_nowait(60.0)  # a healthy run
    script.steps.put_nowait(RuntimeError("e"))
    await settle(lambda: task.restarts == 5)
    assert sleep.delays == [1.0, 2.0, 4.0, 4.0, 1.0]
    script.steps.put_nowait(RuntimeError("f"))
    await settle(lambda: task.restarts == 6)
    assert sleep.delays[-1] == 2.0  # and grows again from there
    await supervisor.stop()


async def test_healthy_after_counts_from_when_the_loop_says_its_work_began(
    supervisor: TaskSupervisor, sleep: FakeSleep, clock: FrozenClock
) -> None:
    """A loop that first waits (for a lease) marks when its work begins: the wait is not a healthy run."""
    holder: list[Supervised] = []
    waited = asyncio.Event()

    async def run() -> None:
        clock.advance(100.0)  # waiting for a lease
        holder[0].began()
        waited.set()
        raise RuntimeError("crashed at once")

    holder.append(supervisor.start("feed", run, restart=POLICY))
    await settle(lambda: holder[0].restarts == 3)
    assert sleep.delays[:3] == [1.0, 2.0, 4.0]
    await supervisor.stop()


async def test_without_a_restart_policy_a_failure_ends_the_task_failed(
    supervisor: TaskSupervisor, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(clock)
    task = supervisor.start("once", script.run, restart=None)
    script.steps.put_nowait(ValueError("bad"))
    await settle(lambda: task.done)
    assert task.status() == {"state": "failed", "restarts": 0, "failures": 1, "last_error": "ValueError: bad"}
    assert script.runs == 1 and "once failed; not restarted" in caplog.text


async def test_a_loop_that_returns_ends_stopped(supervisor: TaskSupervisor, clock: FrozenClock) -> None:
    script = Script(clock)
    task = supervisor.start("finite", script.run)
    script.steps.put_nowait(None)
    await settle(lambda: task.done)
    assert task.status() == {"state": "stopped", "restarts": 0, "failures": 0, "last_error": None}


async def test_on_failure_reports_the_error_and_may_end_the_task(
    supervisor: TaskSupervisor, sleep: FakeSleep, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[str] = []
    give_up = False

    def on_failure(exc: BaseException) -> bool:
        told.append(str(exc))
        return not give_up

    script = Script(clock)
    caplog.set_level(logging.WARNING, logger="legend.supervisor")
    task = supervisor.start("feed", script.run, restart=POLICY, on_failure=on_failure)
    script.steps.put_nowait(RuntimeError("first"))
    await settle(lambda: task.restarts == 1)
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # on_failure reported it: no traceback here
    assert caplog.records[0].getMessage() == "feed restarts in 1.00 s"
    give_up = True
    script.steps.put_nowait(RuntimeError("second"))
    await settle(lambda: task.done)
    assert told == ["first", "second"] and sleep.delays == [1.0]
    assert task.status() == {
        "state": "stopped",
        "restarts": 1,
        "failures": 2,
        "last_error": "RuntimeError: second",
    }


async def test_stop_is_bounded_even_for_a_task_that_ignores_its_cancellation(
    supervisor: TaskSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallowed: the supervisor must not wait for it forever

    polite = supervisor.start("polite", lambda: asyncio.Event().wait())
    task = supervisor.start("stubborn", stubborn)
    await asyncio.sleep(0)
    async with asyncio.timeout(30):  # a guard against a hang, far above the bound
        assert await supervisor.stop(timeout=0.01) is False
    assert polite.state == "stopped" and polite.done
    assert not task.done and "stubborn did not stop within 0.0 s" in caplog.text
    release.set()
    assert task.task is not None
    await task.task
    assert task.state == "stopped"  # it ended by returning
    assert await supervisor.stop() is True  # nothing left to wait for


async def test_a_name_runs_once_at_a_time_and_keeps_its_counts_when_started_again(
    supervisor: TaskSupervisor, clock: FrozenClock
) -> None:
    script = Script(clock)
    task = supervisor.start("loop", script.run, restart=POLICY)
    with pytest.raises(RuntimeError, match="'loop' is running already"):
        supervisor.start("loop", script.run)
    script.steps.put_nowait(OSError("gone"))
    await settle(lambda: task.restarts == 1)
    assert await task.stop() is True and task.state == "stopped"
    again = supervisor.start("loop", script.run, restart=POLICY)
    assert again is task and again.state == "running" and supervisor.get("loop") is task
    assert again.status()["restarts"] == 1 and again.status()["last_error"] == "OSError: gone"
    await supervisor.stop()
    assert supervisor.status() == {
        "loop": {"state": "stopped", "restarts": 1, "failures": 1, "last_error": "OSError: gone"}
    }


async def test_cancel_from_another_thread_stops_the_task(supervisor: TaskSupervisor) -> None:
    task = supervisor.start("feed", lambda: asyncio.Event().wait())
    await asyncio.sleep(0)
    await asyncio.to_thread(task.cancel)
    assert task.task is not None
    with pytest.raises(asyncio.CancelledError):
        await task.task
    assert task.state == "stopped"


async def test_stopping_some_tasks_leaves_the_others_running(supervisor: TaskSupervisor) -> None:
    names = ("a", "b", "c")
    tasks = {name: supervisor.start(name, lambda: asyncio.Event().wait()) for name in names}
    await supervisor.stop_tasks([tasks["a"], tasks["b"]])
    assert {name: status["state"] for name, status in supervisor.status().items()} == {
        "a": "stopped",
        "b": "stopped",
        "c": "running",
    }
    await supervisor.stop()
    assert all(task.state == "stopped" for task in tasks.values())


async def test_the_servers_loops_run_under_its_supervisor_and_stop_with_it(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/legend.db"))
    services = bootstrap(settings, clock=FrozenClock(), backplane=InMemoryBackplane())
    await services.start()
    try:
        running = {name for name, task in services.supervisor.status().items() if task["state"] == "running"}
        assert {"sweeper", "streamer", "alert-delivery", "alert-evaluation"} <= running
        assert services.quote_poller.supervisor is services.supervisor
        assert services.alerting is not None and services.alerting.supervisor is services.supervisor
    finally:
        await services.stop()
    assert {task["state"] for task in services.supervisor.status().values()} == {"stopped"}
