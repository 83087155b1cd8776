"""The most workers a machine holds (legend/capacity.py): per usable CPU, as the container sees them, and
within the memory available."""

from __future__ import annotations

import msgspec
import pytest

from legend import capacity
from legend.settings import RedisSettings, Settings, SettingsError

GiB = 1024**3


def files(monkeypatch: pytest.MonkeyPatch, contents: dict[str, str], cpus: int = 8) -> None:
    monkeypatch.setattr(capacity, "_read", contents.get)
    monkeypatch.setattr(capacity.os, "sched_getaffinity", lambda pid: set(range(cpus)))


def test_a_cgroup_quota_lowers_the_usable_cpus_rounded_up(monkeypatch: pytest.MonkeyPatch) -> None:
    files(monkeypatch, {"/sys/fs/cgroup/cpu.max": "150000 100000\n"})
    assert capacity.usable_cpus() == 2
    files(monkeypatch, {"/sys/fs/cgroup/cpu.max": "max 100000\n"})
    assert capacity.usable_cpus() == 8
    v1 = {
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    }
    files(monkeypatch, v1, cpus=4)
    assert capacity.usable_cpus() == 3
    files(monkeypatch, {**v1, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n"}, cpus=4)
    assert capacity.usable_cpus() == 4


def test_available_memory_is_the_lower_of_meminfo_and_the_room_under_a_cgroup_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meminfo = "MemTotal:       32000000 kB\nMemAvailable:   16777216 kB\n"  # 16 GiB
    files(monkeypatch, {"/proc/meminfo": meminfo})
    assert capacity.available_memory() == 16 * GiB
    limited = {"/sys/fs/cgroup/memory.max": f"{2 * GiB}\n", "/sys/fs/cgroup/memory.current": f"{GiB // 2}\n"}
    files(monkeypatch, {"/proc/meminfo": meminfo, **limited})
    assert capacity.available_memory() == GiB * 3 // 2
    unlimited_v1 = {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "/sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GiB}\n",
    }
    files(monkeypatch, {"/proc/meminfo": meminfo, **unlimited_v1})
    assert capacity.available_memory() == 16 * GiB
    files(monkeypatch, {})
    assert capacity.available_memory() is None


def test_the_bound_is_two_per_cpu_within_memory_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "usable_cpus", lambda: 4)
    monkeypatch.setattr(capacity, "available_memory", lambda: 64 * GiB)
    assert capacity.max_workers() == (8, "2 per usable CPU, 4 CPUs; 256 MiB each of 65536 MiB available")
    monkeypatch.setattr(capacity, "available_memory", lambda: GiB)
    assert capacity.max_workers()[0] == 4  # 1 GiB: four workers' budget
    monkeypatch.setattr(capacity, "available_memory", lambda: 100 * 1024 * 1024)
    assert capacity.max_workers()[0] == 1  # one process is always allowed
    monkeypatch.setattr(capacity, "available_memory", lambda: None)
    assert capacity.max_workers() == (8, "2 per usable CPU, 4 CPUs")


def test_serve_refuses_past_the_machine_and_past_256_whatever_the_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--workers`` replaces the setting without the settings' own check (at most 256): serve checks."""
    from legend import server

    def settings(workers: int) -> Settings:
        base = Settings(redis=RedisSettings(url="redis://127.0.0.1:1"))
        return msgspec.structs.replace(base, server=msgspec.structs.replace(base.server, workers=workers))

    monkeypatch.setattr(server, "max_workers", lambda: (4, "2 per usable CPU, 2 CPUs"))
    server.check_workers(settings(4))
    with pytest.raises(
        SettingsError, match=r"^server.workers = 5 is more than this machine can run: at most 4 \("
    ):
        server.check_workers(settings(5))
    monkeypatch.setattr(server, "max_workers", lambda: (1024, "2 per usable CPU, 512 CPUs"))
    server.check_workers(settings(256))
    with pytest.raises(SettingsError, match=r"at most 256 \(whatever the machine\)"):
        server.check_workers(settings(300))
