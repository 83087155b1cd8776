"""Processes of a run: limits, start and stop of the servers under test, and their CPU and memory from /proc."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
KEEPER = Path(__file__).resolve().with_name("keeper.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), so nothing outlives a run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def process_tree() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every live process (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """Every live process below ``root`` (not ``root`` itself)."""
    children = process_tree() if tree is None else tree
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_kib(pids: list[int]) -> int:
    """Resident set size of the given processes, summed, in KiB (from /proc/PID/statm)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
    return total


def machine_busy_seconds() -> float:
    """CPU-seconds all CPUs of the machine spent busy since boot (everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def child_env(*paths: Path) -> dict[str, str]:
    """This environment without Legend's own variables, with ``paths`` first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEGEND_", "REALTIME_", "REDIS_URL"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), *filter(None, [env.get("PYTHONPATH")])])
    return env


class ServerProcess:
    """A server under test, run by the keeper in its own process group; ``pids`` are all of its processes."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(KEEPER), *argv],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self, tree: dict[int, list[int]] | None = None) -> list[int]:
        """The server's processes (a master and its workers, say), without the keeper."""
        return descendants(self.process.pid, tree)

    def exited(self) -> bool:
        return self.process.poll() is not None

    def wait_ready(self, timeout: float = 90.0, path: str = "/health") -> None:
        """Until ``GET path`` answers 200; RuntimeError with the log's tail if the server exits or hangs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited():
                raise RuntimeError(f"stopped: {self.logs()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=1.0) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"did not answer {path} within {timeout:.0f} s: {self.logs()}")

    def logs(self, tail: int = 1500) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return " | ".join(line for line in text[-tail:].splitlines() if line.strip())

    def stop(self) -> None:
        """SIGTERM to the keeper (which stops the whole group), SIGKILL to the group if that takes long."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(6.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(2.0)
        self._log.close()


def start_redis(name: str, workdir: Path) -> ServerProcess:
    """A private redis-server on a free port: no persistence, nothing written to disk."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir), "--maxclients", "1000"]
    return ServerProcess(name, argv, port, workdir, child_env())


def wait_redis(server: ServerProcess, timeout: float = 20.0) -> None:
    """Until the redis-server answers PING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exited():
            raise RuntimeError(f"redis-server exited: {server.logs()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"redis-server did not answer PING within {timeout:.0f} s")
