"""One logging configuration for uvicorn, Litestar and Legend: plain text or JSON lines, credentials
redacted from every line, the connection id on lines about a connection, hostile input rate-limited.

``legend serve`` hands ``logging_config(settings)`` to uvicorn (which applies it with ``dictConfig``), and
the Litestar app adds no logging of its own, so every record of every library reaches one handler and
one formatter.

Redaction works on the parsed, percent-decoded query of every URL in a record (``?tok%65n=…`` is a
``token`` too), rewriting only the sensitive values and keeping the record's arguments as they were, so
formatters that unpack them (uvicorn's access log) keep working.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from legend.runtime.logcontext import connection_id

# Query parameters whose values never reach a log line (compared case-insensitively, after decoding).
SENSITIVE = frozenset({"token", "access_token", "id_token", "jwt", "password", "secret", "api_key", "apikey"})
REDACTED = "[redacted]"
HIDDEN_PASSWORD = "***"  # in a URL's user:password@ (as SQLAlchemy hides it), where brackets mean IPv6

# uvicorn's lines that any client can make the server write (besides ours, marked ``HOSTILE``): each at
# most once a second.
UVICORN_HOSTILE = frozenset(
    {
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
        "Invalid UTF-8 sequence received from client.",
    }
)


def redact_url(text: str) -> str:
    """``text`` with the values of sensitive query parameters replaced, if it is a URL or path with a
    query; parsed and decoded, so no spelling of a parameter name escapes."""
    head, sep, query = text.partition("?")
    if not sep:
        return text
    query, hash_, fragment = query.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.strip().lower() in SENSITIVE for name, _ in pairs):
        return text
    cleaned = [(name, REDACTED if name.strip().lower() in SENSITIVE else value) for name, value in pairs]
    return f"{head}?{urlencode(cleaned, safe='[]/:')}{hash_}{fragment}"


# Settings whose values are credentials (``legend config check`` prints the rest): a key containing one
# of these words, case-insensitively (``jwt_secret``, ``admin_token``, ``sentinel_password``, ``api_key``,
# ``secret_key``, a plugin's ``webhook_token`` …); wrongly catching a harmless key only hides its value.
SECRET_WORDS = (
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "key_id",
    "private_key",
    "credential",
)


def is_secret_setting(key: str) -> bool:
    """The value of a setting named ``key`` is a credential."""
    name = key.lower()
    return name in SENSITIVE or any(word in name for word in SECRET_WORDS)


def redact_credentials(text: str) -> str:
    """``text`` with the password of a URL (``scheme://user:***@host``) and the values of sensitive
    query parameters replaced; anything else as it is."""
    if "://" in text and "@" in text:
        try:
            parts = urlsplit(text)
            password = parts.password
        except ValueError:
            password = None
        if password is not None:
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            text = urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN_PASSWORD}@{hostport}"))
    return redact_url(text)


def redact_settings(value: object, key: str = "") -> object:
    """Settings as plain data (``msgspec.to_builtins``) with every credential replaced: the values of
    secret keys (``is_secret_setting``; unset ones stay unset) and passwords in URLs, at any depth."""
    if isinstance(value, dict):
        return {name: redact_settings(item, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [redact_settings(item, key) for item in value]
    if isinstance(value, str):
        return REDACTED if value and is_secret_setting(key) else redact_credentials(value)
    return value


def redact(value: object) -> object:
    """Every URL-like word of a string redacted (other values as they are)."""
    if not isinstance(value, str) or "?" not in value:
        return value
    return " ".join(_redact_word(word) for word in value.split(" "))


def _redact_word(word: str) -> str:
    core = word.strip("\"'")
    if "?" not in core:
        return word
    start = word.index(core)
    return word[:start] + redact_url(core) + word[start + len(core) :]


class Redact(logging.Filter):
    """Redacts the arguments (or the message) of every record; never fails a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.args, tuple):
                record.args = tuple(redact(arg) for arg in record.args)
            elif isinstance(record.args, dict):
                record.args = {key: redact(arg) for key, arg in record.args.items()}
            if isinstance(record.msg, str) and "?" in record.msg:
                record.msg = redact(record.msg)
        except Exception:  # a record that cannot be redacted is not dropped for that
            pass
        return True


class Hostile(logging.Filter):
    """Lets each line that a client can provoke (``logcontext.HOSTILE`` lines, and uvicorn's) through at
    most once a second per message, without a traceback; the next one says how many were left out."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = str(record.msg)
        if not getattr(record, "hostile", False) and kind not in UVICORN_HOSTILE:
            return True
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return False
        self._last[kind] = now
        skipped = self._skipped.pop(kind, 0)
        if skipped:
            record.msg = f"{kind} ({skipped} more like it not logged)"
        record.exc_info = None  # one line: a traceback of a client's bad bytes helps nobody
        record.exc_text = None
        return True


class WithConnection(logging.Filter):
    """Adds ``connection_id`` (the connection the code logging is working for) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "connection_id"):
            record.connection_id = connection_id.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, worker: str = "") -> None:
        tag = f" [{worker}]" if worker else ""
        super().__init__(f"%(asctime)s %(levelname)s{tag} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        connection = getattr(record, "connection_id", None)
        return f"{line} [connection {connection}]" if connection else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, worker, connection_id, exception."""

    def __init__(self, worker: str = "") -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker:
            data["worker"] = self.worker
        connection = getattr(record, "connection_id", None)
        if connection:
            data["connection_id"] = connection
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(data).decode()


def logging_config(level: str = "info", fmt: str = "text", worker: str = "") -> dict[str, Any]:
    """The ``dictConfig`` for the whole process: one handler on the root logger, uvicorn's and Litestar's
    loggers propagating to it; ``worker`` names the process on every line (``legend serve --workers``)."""
    upper = level.upper()
    formatter = "json" if fmt == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": Redact},
            "hostile": {"()": Hostile},
            "connection": {"()": WithConnection},
        },
        "formatters": {
            "text": {"()": TextFormatter, "worker": worker},
            "json": {"()": JsonFormatter, "worker": worker},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["hostile", "redact", "connection"],
            }
        },
        "root": {"level": upper, "handlers": ["console"]},
        "loggers": {
            name: {"level": upper, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar", "legend")
        },
    }
