"""Debian's nginx running the shipped ``deploy/nginx.conf`` in front of test instances.

The configuration is the file as shipped, with only what must differ on a test machine replaced by text:
the upstream ``server app1:8000`` lines (the instances' ports), ``listen 80`` (a free port of 127.0.0.1),
and the paths nginx writes (pid, logs, temporary files: a temporary directory). Each replacement must
match, so a change to the shipped file that the tests no longer cover fails here instead of being
silently skipped. ``source`` adds ``proxy_bind``: nginx then speaks to the instances from an address of
its own, as it does from its container in deploy/docker-compose.yml (from 127.0.0.1 uvicorn's loopback
default would trust it without any setting).

nginx runs in the foreground (``daemon off``) as a child of the test, with its own prefix; as root its
workers run as root too (there is no ``www-data`` home to hand the temporary directory to).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.loopback import LoopbackHttp, free_port

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
UPSTREAM = re.compile(r"server app(\d+):8000\b")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if found is None:
        raise RuntimeError("nginx not found: run ./scripts/test.sh (it installs Debian's nginx package)")
    return found


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"deploy/nginx.conf no longer contains {old!r}: update tests/support/nginx.py")
    return text.replace(old, new)


def deployed_config(
    shipped: str, upstreams: list[str], port: int, directory: Path, source: str | None
) -> str:
    """The shipped configuration with its upstreams, port and paths replaced (see the module docstring)."""
    names = UPSTREAM.findall(shipped)
    if len(names) != len(upstreams):
        raise AssertionError(
            f"deploy/nginx.conf has {len(names)} upstream servers, the test gives {len(upstreams)}"
        )
    addresses = iter(upstreams)
    text = UPSTREAM.sub(lambda _: f"server {next(addresses)}", shipped)
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{port};")
    paths = "".join(
        f"    {name}_temp_path {directory / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    extra = f"    access_log {directory / 'access.log'};\n{paths}"
    if source is not None:
        extra += f"    proxy_bind {source};\n"
    text = _replace(text, "http {\n", "http {\n" + extra)
    if os.geteuid() == 0:
        text = "user root;\n" + text
    return text


class Nginx(LoopbackHttp):
    """``start()`` runs nginx on a free port in front of ``upstreams`` (``host:port``); ``close()`` stops it."""

    def __init__(self, upstreams: list[str], source: str | None = None) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="legend-nginx-")
        self.dir = Path(self._dir.name)
        self.config_path = self.dir / "nginx.conf"
        self.config_path.write_text(
            deployed_config(SHIPPED.read_text(encoding="utf-8"), upstreams, self.port, self.dir, source),
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Nginx:
        error_log = self.dir / "error.log"
        self.process = subprocess.Popen(
            [
                nginx_binary(),
                "-p",
                str(self.dir),
                "-c",
                str(self.config_path),
                "-e",
                str(error_log),
                "-g",
                f"daemon off; pid {self.dir / 'nginx.pid'};",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError(f"nginx did not listen within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def close(self) -> None:
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)  # fast: a graceful stop waits for every WebSocket
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self._dir.cleanup()
