"""py-spy profiles of a server under saturation, summarised as self and inclusive time per function."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bench.fanout.procs import REPO_ROOT


async def profile(pid: int, out: Path, seconds: float, window: Awaitable[Any]) -> str:
    """Run ``window`` with ``py-spy record`` attached to ``pid`` and its subprocesses; the hot spots."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return "py-spy is not installed (pip install -e '.[bench]')"
    spy = await asyncio.create_subprocess_exec(
        str(py_spy),
        *("record", "--nonblocking", "--subprocesses", "--format", "raw", "--rate", "200"),
        *("--duration", str(max(1, round(seconds))), "--pid", str(pid), "--output", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    err = b""
    try:
        await window
        async with asyncio.timeout(30):
            _, err = await spy.communicate()
    finally:
        if spy.returncode is None:
            spy.kill()
            await spy.wait()
    try:
        return hot_spots(out)
    except OSError:
        return f"py-spy wrote nothing (exit {spy.returncode}): {err.decode(errors='replace')[-300:]}"


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


# Frames under which everything runs: left out of the inclusive list.
_SCAFFOLD = re.compile(
    r"^(<module>|_run_module_as_main|_run_code|main|serve|serve_litestar|serve_picows|serve_socketio|run|asyncio_run|Server\.run|"
    r"Runner\.run|BaseEventLoop\.(run_until_complete|run_forever|_run_once)|Handle\._run|"
    r"Thread\.(run|_bootstrap|_bootstrap_inner)|BaseProcess\.(run|_bootstrap)|_main|spawn_main|worker_main|run_worker) \("
)


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/", str(REPO_ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def hot_spots(raw: Path, top: int = 15) -> str:
    """Self and inclusive time per function from py-spy's raw (collapsed) output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        names = []
        while stack.startswith("process "):  # --subprocesses: root frames name each process (quoted argv)
            end = stack.find('";')
            stack = stack[end + 2 :] if end >= 0 else ""
        for frame in filter(None, stack.split(";")):
            match = _FRAME.match(frame)
            if match is None:
                names.append(frame)
                continue
            where = _short(match["file"])
            names.append(f"{match['func']} ({where}:{match['line']})" if match["line"] else frame)
        self_time[names[-1] if names else "(no Python frame)"] += count
        for name in {re.sub(r":\d+\)$", ")", n) for n in names}:  # inclusive: per function, not per line
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples at 200 Hz, % of all samples; self time (leaf frame, file:line):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("inclusive time (function; the event loop and start-up frames left out):")
    kept = [(name, n) for name, n in inclusive.most_common() if not _SCAFFOLD.match(name)]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in kept[: top + 10]]
    return "\n".join(lines)
