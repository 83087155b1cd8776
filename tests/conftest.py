"""Session-wide test services: a private PostgreSQL (tests/support/postgres.py); the order of the slow modules
under pytest-xdist; the process's logging put back after each test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

pytest_plugins = ("tests.support.postgres",)


# The modules whose tests take longest (seconds to a minute each: servers killed and restarted, failovers,
# an image install, the benchmark's smoke run), longest first. Under pytest-xdist (scripts/test.sh) they go
# to the head of the workers' first shares, dealt in turn, so that none of them starts late and runs alone
# at the end: worksteal first hands worker i the next len(pending) // (workers - i) tests, in order.
SLOW_FIRST = (
    "tests/bench/test_fanout_smoke.py",
    "tests/packaging/test_dockerfile.py",
    "tests/cluster/test_alerts_cluster.py",
    "tests/cluster/test_partition_matrix.py",
    "tests/soak/test_soak.py",
    "tests/persistence/test_crash_safety.py",
    "tests/cluster/test_sentinel_failover.py",
    "tests/contract/test_redis_sentinel.py",
    "tests/packaging/test_wheel.py",
    "tests/cluster/test_bars_cluster.py",
    "tests/cluster/test_redis_recovery.py",
    "tests/cluster/test_workers.py",
    "tests/cluster/test_drain.py",
    "tests/deploy/test_nginx_deployment.py",
    "tests/cluster/test_multi_instance.py",
    "tests/cluster/test_partitions.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))  # set in each xdist worker
    if workers < 2:
        return
    slow: dict[str, list[pytest.Item]] = {module: [] for module in SLOW_FIRST}
    rest: list[pytest.Item] = []
    for item in items:
        module = item.path.relative_to(config.rootpath).as_posix()
        slow.get(module, rest).append(item)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for n, module in enumerate(module for module in SLOW_FIRST if slow[module]):
        heads[n % workers].extend(slow[module])
    ordered: list[pytest.Item] = []
    left = len(items)
    for i, head in enumerate(heads):
        share = left // (workers - i)
        taken = max(0, share - len(head))
        ordered += head + rest[:taken]
        del rest[:taken]
        left -= len(head) + taken
    items[:] = ordered + rest


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs the CLI in this process (``legend.cli.main``) configures logging for the whole process:
    a handler on the root logger writing to the ``sys.stderr`` of that moment, pytest's capture file, closed
    after the test. Left in place, a server in a later test logged through it ("Logging error ... I/O
    operation on closed file"). The root logger and the loggers the CLI sets are put back after each test."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "legend")
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate)
        for logger in map(logging.getLogger, names)
    ]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
