"""Redis Sentinel for tests: one primary, one replica and three sentinels, each on a free port, all under
one temporary directory, all SIGKILLed on ``close()``.

Sentinel needs a configuration file it may rewrite, so each sentinel gets its own in the directory. The
failover is quick (``down_after_ms`` before the primary counts as down, quorum 2 of 3) so that a test can
kill the primary and watch the cluster move to the replica in seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.support.loopback import free_port
from tests.support.redis_server import REDIS_SERVER, RedisServer, ping


class RedisSentinel:
    """``start()``, then ``primary`` / ``kill_primary()`` / ``wait_for_failover()``; ``close()`` kills all."""

    def __init__(
        self, service_name: str = "legend", down_after_ms: int = 1000, failover_timeout_ms: int = 5000
    ) -> None:
        self.service_name = service_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.dir = Path(tempfile.mkdtemp(prefix="legend-sentinel-"))
        self.nodes: list[RedisServer] = []  # the primary first, then the replica
        self.sentinel_ports: list[int] = []
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels(self) -> list[str]:
        """The ``redis.sentinels`` setting."""
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def start(self, timeout: float = 30.0) -> RedisSentinel:
        try:
            primary = RedisServer(directory=self.dir).start()
            self.nodes.append(primary)
            replica = RedisServer(args=["--replicaof", "127.0.0.1", str(primary.port)], directory=self.dir)
            self.nodes.append(replica.start())
            self._until(
                lambda: self._info(replica.port).get("master_link_status") == "up", timeout, "replica"
            )
            for _ in range(3):
                self._start_sentinel(primary.port, timeout)
            # every sentinel knows the replica and the two other sentinels before anything is killed
            self._until(self._settled, timeout, "sentinels to discover each other and the replica")
        except BaseException:
            self.close()
            raise
        return self

    def _start_sentinel(self, primary_port: int, timeout: float) -> None:
        port = free_port()
        config = self.dir / f"sentinel-{port}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    "daemonize no",
                    f"dir {self.dir}",
                    f"logfile {self.dir / f'sentinel-{port}.log'}",
                    f"sentinel monitor {self.service_name} 127.0.0.1 {primary_port} 2",
                    f"sentinel down-after-milliseconds {self.service_name} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.service_name} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {self.service_name} 1",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [REDIS_SERVER, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._sentinels.append(process)
        self.sentinel_ports.append(port)
        self._until(lambda: ping(port), timeout, f"sentinel on {port}")
        if process.poll() is not None:
            raise RuntimeError(f"sentinel exited with {process.returncode}:\n{self.logs()}")

    def _settled(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(port=port, socket_timeout=1) as client:
                if len(client.sentinel_sentinels(self.service_name)) < 2:
                    return False
                if not client.sentinel_slaves(self.service_name):
                    return False
        return True

    def primary_port(self) -> int:
        """The primary as the sentinels see it now."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1) as client:
            _host, port = client.sentinel_get_master_addr_by_name(self.service_name)
        return int(port)

    @property
    def primary(self) -> RedisServer:
        port = self.primary_port()
        return next(node for node in self.nodes if node.port == port)

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary: no goodbye, nothing saved; returns the node killed."""
        node = self.primary
        node.stop()
        return node

    def wait_for_failover(self, old_port: int, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name a new primary that says it is one."""
        started = time.monotonic()

        def moved() -> bool:
            try:
                port = self.primary_port()
            except redis.RedisError:
                return False
            return port != old_port and self._info(port).get("role") == "master"

        self._until(moved, timeout, "failover")
        return time.monotonic() - started

    def _info(self, port: int) -> dict[str, str]:
        try:
            with redis.Redis(port=port, socket_timeout=1) as client:
                return {str(k): str(v) for k, v in client.info("replication").items()}
        except redis.RedisError:
            return {}

    def _until(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"waiting for {what}: not within {timeout}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.dir.glob("*.log"))
        )

    def close(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisSentinel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
