"""A real ``legend serve`` process on a free port, for protocol tests over real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from legend.settings import Settings
from tests.support.loopback import LoopbackHttp, free_port

ADMIN_TOKEN = "test-admin-token"
# Shared by every server the tests start (and by test runs after this one): the market calendar is read from the
# library once a day, not in each of the suite's few hundred server starts (0.6 s of CPU each, a third of a start).
CALENDAR_CACHE = Path(tempfile.gettempdir()) / f"legend-test-calendar-{os.getuid()}"


# Variables that would change what ``legend`` reads besides its settings file.
OUTSIDE_SETTINGS = ("REDIS_URL", "REALTIME_UPDATE_INTERVAL", "REALTIME_AFTER_HOURS_INTERVAL")


def legend_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Legend's own variables, with ``extra`` added."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEGEND_") and k not in OUTSIDE_SETTINGS}
    return {**clean, **(extra or {})}


def run_legend(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m legend ARGS`` to its end, in ``cwd``, with no Legend variables but ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "legend", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=legend_env(env),
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(config: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML with dotted section names (``plugins.news``) and inline tables."""
    lines: list[str] = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def merge(
    base: dict[str, dict[str, Any]], extra: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in extra.items():
        merged.setdefault(section, {}).update(values)
    return merged


def pattern_body(
    message: str,
    *,
    ticker: str = "AAPL",
    score: float = 8.5,
    entry: float = 100,
    stop: float = 95,
    target: float = 120,
) -> dict[str, object]:
    """A VCP pattern alert as ``POST /api/ws/broadcast/pattern`` takes it."""
    return {
        "ticker": ticker,
        "pattern_type": "VCP",
        "score": score,
        "entry_price": entry,
        "stop_price": stop,
        "target_price": target,
        "message": message,
    }


class LegendServer(LoopbackHttp):
    """Starts, stops and restarts ``python -m legend serve`` with a generated settings file."""

    def __init__(
        self, config: Mapping[str, Mapping[str, Any]] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="legend-test-")
        base: dict[str, dict[str, Any]] = {
            "security": {"admin_token": ADMIN_TOKEN},
            "server": {"log_level": "warning"},
            "market": {"calendar_cache": str(CALENDAR_CACHE)},
        }
        if "database" in Settings.__struct_fields__ and "database" not in (config or {}):
            base["database"] = {"url": f"sqlite+aiosqlite:///{self._dir.name}/legend.db"}
        self.config = merge(base, config or {})
        self.config_path = Path(self._dir.name) / "legend.toml"
        self.config_path.write_text(to_toml(self.config), encoding="utf-8")
        self.log_path = Path(self._dir.name) / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def start(
        self,
        timeout: float = 30.0,
        extra_env: Mapping[str, str] | None = None,
        wait: bool = True,
        preexec_fn: Callable[[], None] | None = None,
    ) -> LegendServer:
        """Start and wait until ``/health`` answers (unless not ``wait``), with ``extra_env`` added to
        the environment; ``preexec_fn`` runs in the child before ``legend`` (resource limits)."""
        env = legend_env({"PYTHONUNBUFFERED": "1", **(extra_env or {})})
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "legend",
                "serve",
                "--port",
                str(self.port),
                "--config",
                str(self.config_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=preexec_fn,
        )
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout}s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        try:
            self.stop(signal.SIGKILL)
        finally:
            self._dir.cleanup()

    def __enter__(self) -> LegendServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/ws/stats", headers=self.admin, timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data
