"""Helpers for the plugin tests: settings with a ``[plugins]`` table, real servers with a full configuration,
waiting on conditions with a deadline, and a feed server's state."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import msgspec

from legend.settings import Settings
from tests.support.server import ADMIN_TOKEN, LegendServer, to_toml
from tests.support.transport import RecordingTransport

# The hooks the example plugin (examples/legend-sentiment) implements, as discovery lists them.
SENTIMENT_HOOKS = [
    "config_schema",
    "on_shutdown",
    "on_startup",
    "register_channels",
    "register_feeds",
    "register_routes",
    "register_storage",
]

# ───────────────────────────── settings and services ─────────────────────────────


def settings_with(plugins: Mapping[str, Any], **sections: Any) -> Settings:
    """Settings with a raw ``[plugins]`` table, validated like a file would be."""
    raw: dict[str, Any] = {"plugins": dict(plugins), **sections}
    return msgspec.convert(raw, Settings, strict=False)


def _try(predicate: Callable[[], Any], deadline: float, timeout: float, what: str) -> Any:
    """One try: ``predicate()``'s value if truthy, else None; AssertionError once ``deadline`` has passed."""
    value = predicate()
    if value:
        return value
    if time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return None


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Wait (yielding to the loop) until ``predicate()`` is truthy; its value."""
    deadline = time.monotonic() + timeout
    while (value := _try(predicate, deadline, timeout, what)) is None:
        await asyncio.sleep(0.01)
    return value


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Blocking variant for a server in another process."""
    deadline = time.monotonic() + timeout
    while (value := _try(predicate, deadline, timeout, what)) is None:
        time.sleep(0.02)
    return value


class Transport(RecordingTransport):
    """What an in-process session sends to: keeps every frame (``open_session(Transport(), user)``)."""

    @property
    def sent(self) -> list[str]:
        return self.texts

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The frames sent, decoded; only those of type ``kind`` when given."""
        decoded = [msgspec.json.decode(text) for text in self.sent]
        return [m for m in decoded if kind is None or m.get("type") == kind]

    def got(self, kind: str) -> bool:
        """A message of type ``kind`` was sent (``subscribed``: a subscribe was acknowledged)."""
        if kind == "subscribed":
            return any(m.get("action") == "subscribed" for m in self.messages("subscription"))
        return bool(self.messages(kind))


# ───────────────────────────── real servers ─────────────────────────────


toml = to_toml  # one TOML writer for every suite: tests/support/server.py


QUIET = {"update_interval": 3600, "after_hours_interval": 3600}


def plugin_server(config: Mapping[str, Mapping[str, Any]]) -> LegendServer:
    """A ``legend serve`` process with this configuration (``plugins.<name>`` sections allowed)."""
    server = LegendServer()
    full: dict[str, dict[str, Any]] = {section: dict(values) for section, values in server.config.items()}
    full.setdefault("realtime", {}).update(QUIET)
    for section, values in config.items():
        full.setdefault(section, {}).update(values)
    server.config = full
    server.config_path.write_text(toml(full), encoding="utf-8")
    return server


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# ───────────────────────────── a feed server ─────────────────────────────


@dataclass
class FeedFile:
    body: bytes
    content_type: str
    etag: str = ""
    last_modified: str = ""
    conditional: bool = True  # answer 304 when the validators match


@dataclass
class FeedServer:
    """Serves feed documents by path; records every request's path, status and headers."""

    port: int = 0
    files: dict[str, FeedFile] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, content_type: str, *, conditional: bool = True) -> None:
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        self.files[path] = FeedFile(
            body, content_type, etag, formatdate(time.time(), usegmt=True), conditional
        )

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]
