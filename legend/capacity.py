"""What this machine can hold: its usable CPUs and free memory, and so the most ``server.workers``.

A worker is one event loop, so it uses at most one core: one per core is where the socket writes stop
scaling, and ``WORKERS_PER_CPU`` per core leaves room for a worker paused in a garbage collection or a
slow Redis round trip. More only split the same cores between more processes and cost memory, Redis
connections (each worker is a cluster instance with its own pool, pub/sub and heartbeat) and start-up
time. Each worker also needs ``WORKER_MEMORY``: an idle one measured 155 MiB resident, and its clients'
connections come on top. Both are read as the container sees them (CPU affinity and cgroup quota, cgroup
memory limit), not only as the host does.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

WORKERS_PER_CPU = 2
WORKER_MEMORY = 256 * 1024 * 1024  # bytes a worker is budgeted: 155 MiB idle, plus its connections
MiB = 1024 * 1024


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, lowered by a cgroup CPU quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def available_memory() -> int | None:
    """Bytes that can still be allocated without swapping: ``MemAvailable``, lowered by the room left
    under a cgroup memory limit; None when neither can be read."""
    found: list[int] = []
    meminfo = _read("/proc/meminfo")
    for line in (meminfo or "").splitlines():
        if line.startswith("MemAvailable:"):
            found.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _number(limit_file), _number(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 says "none" with 2^63
            found.append(max(0, limit - usage))
            break
    return min(found) if found else None


def max_workers() -> tuple[int, str]:
    """The most workers this machine can run, and why (for the error message and the docs' numbers)."""
    cpus = usable_cpus()
    by_cpu = WORKERS_PER_CPU * cpus
    reason = f"{WORKERS_PER_CPU} per usable CPU, {cpus} CPU{'s' if cpus > 1 else ''}"
    memory = available_memory()
    if memory is None:
        return by_cpu, reason
    by_memory = max(1, memory // WORKER_MEMORY)
    reason += f"; {WORKER_MEMORY // MiB} MiB each of {memory // MiB} MiB available"
    return min(by_cpu, by_memory), reason


def _cgroup_cpu_quota() -> float | None:
    """CPUs granted by a cgroup quota (v2 ``cpu.max``, v1 ``cfs_quota_us``), None without one."""
    v2 = _read("/sys/fs/cgroup/cpu.max")
    if v2 is not None:
        quota, _, period = v2.strip().partition(" ")
        if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
            return int(quota) / int(period)
        return None
    quota_us, period_us = (
        _number("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        _number("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    if quota_us is not None and period_us and quota_us > 0:
        return quota_us / period_us
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _number(path: str) -> int | None:
    text = (_read(path) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None
