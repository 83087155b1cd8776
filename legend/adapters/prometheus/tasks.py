"""The supervised background tasks' figures: each task's state, restarts and failures."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from legend.runtime.supervisor import TaskState, TaskSupervisor


def tasks(supervisor: TaskSupervisor) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "legend_task_state",
        "1 for each background task's current state: running, restarting, stopped or failed.",
        labels=["task", "state"],
    )
    restarts = CounterMetricFamily(
        "legend_task_restarts",
        "Times a background task ran again after it raised (GET /api/ws/stats, tasks, has its last error).",
        labels=["task"],
    )
    failures = CounterMetricFamily("legend_task_failures", "Times a background task raised.", labels=["task"])
    for task in supervisor.tasks():
        for value in TaskState:
            state.add_metric([task.name, value.value], float(task.state is value))
        restarts.add_metric([task.name], task.restarts)
        failures.add_metric([task.name], task.failures)
    yield from (family for family in (state, restarts, failures) if family.samples)
