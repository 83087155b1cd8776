"""A worker process's entry point, ``python -m legend.worker SUPERVISOR FD INDEX INSTANCE``, run by
``legend.server.run_workers``.

Its first act ties the process's life to its parent's: ``PR_SET_PDEATHSIG`` makes the kernel send
SIGTERM when the parent dies, at any moment after this. The parent may already have died before
(the interpreter's own start takes tens of milliseconds, more on a loaded machine): the process was then
handed to another parent, so ``os.getppid()`` no longer names the parent and the worker exits at once.
Only then does anything slow run: reading the settings (pickled, in the anonymous file ``FD``) and
importing the server. Before that first act the module imports only the standard library's bare needs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
ORPHANED = 75  # the exit status of a worker whose parent was gone before it could be tied to it


def die_with(parent: int) -> None:
    """SIGTERM this process when ``parent`` (its parent) dies; exit now if it already has. Where
    the kernel has no PR_SET_PDEATHSIG (not Linux), a thread looks at the parent twice a second."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    if os.getppid() != parent:
        os._exit(ORPHANED)
    if prctl is None:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="parent watch", daemon=True).start()


def main(argv: list[str]) -> None:
    parent, fd, index, instance_id = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    die_with(parent)
    import pickle

    with os.fdopen(fd, "rb") as file:
        settings = pickle.load(file)  # the parent's own Settings, written by it alone
    from legend.server import worker_main

    worker_main(settings, index, instance_id)


if __name__ == "__main__":
    main(sys.argv[1:])
