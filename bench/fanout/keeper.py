"""Runs one server under test and takes all of its processes down with it, whatever happens to the bench.

    python bench/fanout/keeper.py ARGV...

The bench starts every server through this file (by path, so it imports nothing of the bench), as the
leader of a new process group. The keeper asks Linux for SIGTERM when the bench dies (PR_SET_PDEATHSIG,
even on SIGKILL) and adopts orphaned descendants (PR_SET_CHILD_SUBREAPER): a server that forks workers
(``legend serve --workers 2``) cannot leave one behind. On SIGTERM, or when its child exits, the keeper
asks the group to stop, then kills it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value)


def _stop_group(grace: float) -> None:
    """SIGTERM to everyone else in our process group, then SIGKILL to the group (us included)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.05)
        except ChildProcessError:
            break  # every child (and adopted orphan) has exited
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: keeper.py ARGV...", file=sys.stderr)
        return 2
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() == 1:  # the bench died before the line above took effect
        return 1
    signal.signal(signal.SIGTERM, lambda *_: _stop_group(3.0))
    signal.signal(signal.SIGINT, lambda *_: _stop_group(3.0))
    child = subprocess.Popen(argv)
    code = child.wait()
    print(f"keeper: {argv[0]} exited with {code}", file=sys.stderr, flush=True)
    _stop_group(1.0)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
