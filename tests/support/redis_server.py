"""A private ``redis-server`` on a free port that tests can kill and start again on the same port.

No persistence (``--save "" --appendonly no``), so a restart loses every key, like a crashed cache. It
never touches a Redis on 6379: the tests pass on a machine where nothing listens there.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.support.loopback import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def quick_redis_settings(url: str, lease_ttl: float) -> dict[str, Any]:
    """``[redis]`` of an instance under test: short timeouts and reconnect delays, so that a Redis or an
    instance killed by a test shows within about a second, and a dead leader's leases lapse after
    ``lease_ttl``."""
    return {
        "url": url,
        "lease_ttl": lease_ttl,
        "connect_timeout": 0.5,
        "socket_timeout": 0.5,
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.5,
    }


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis on ``port`` answers PING (a raw socket: no client library involved)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()`` / ``stop()`` (SIGKILL) / ``start()`` again on the same port; ``close()`` cleans up."""

    def __init__(
        self, port: int | None = None, args: list[str] | None = None, directory: Path | None = None
    ) -> None:
        """``args`` are more ``redis-server`` options (``["--replicaof", "127.0.0.1", "6380"]``);
        ``directory`` keeps the data and log there (the caller cleans it up) instead of a temporary one."""
        self.port = port or free_port()
        self.args = list(args or [])
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._dir = tempfile.TemporaryDirectory(prefix="legend-redis-")
            directory = Path(self._dir.name)
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            return self
        # fmt: off
        command = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.dir / f"redis-{self.port}.log"),
            "--daemonize", "no",
            *self.args,
        ]
        # fmt: on
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{self.logs()}")
            if ping(self.port):
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: no goodbye to clients, nothing saved) and wait until it is gone."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def logs(self) -> str:
        path = self.dir / f"redis-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._dir is not None:
                self._dir.cleanup()

    async def history(self, stream: str) -> list[dict[str, Any]]:
        """A stream's messages as the Redis backplane keeps them (what its subscribers were sent, in order)."""
        async with aioredis.from_url(self.url) as client:
            texts = await client.lrange(f"legend:{{{stream}}}:history", 0, -1)
        return [json.loads(text) for text in texts]

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
