"""``legend.worker``: a worker's first act ties its life to its supervisor's, and a worker whose supervisor
died before that exits at once."""

from __future__ import annotations

import subprocess
import sys
import time

from legend.worker import ORPHANED

TIE = "import sys, time; from legend.worker import die_with; die_with(int(sys.argv[1])); "


def test_a_worker_whose_supervisor_is_already_gone_exits_at_once() -> None:
    """Its parent is not the supervisor it was started for: the supervisor died and it was reparented."""
    done = subprocess.run([sys.executable, "-c", TIE + "time.sleep(60)", "1"], timeout=30)
    assert done.returncode == ORPHANED


def test_a_worker_gets_sigterm_when_its_supervisor_dies() -> None:
    """A stand-in supervisor starts a worker, prints its pid and dies without a word (os._exit)."""
    supervisor = (
        "import os, subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {TIE + 'print(1, flush=True); time.sleep(60)'!r},"
        " str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "child.stdout.readline()\n"  # tied by now
        "print(child.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", supervisor], capture_output=True, text=True, timeout=30)
    worker = int(done.stdout)
    deadline = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its supervisor"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False
