"""Checks of the addresses and URLs in the settings, each without connecting: a bind host, http(s) URLs,
Redis URLs as redis-py reads them, database URLs as SQLAlchemy does. Each raises ValueError with a message
that starts with the key's name and leaves out anything that may hold a password."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$")


def bind_host(host: str) -> str:
    """``host`` if it is an address or a host name that can be bound (``0.0.0.0``, ``::``, ``localhost``,
    ``api.internal``); ValueError saying what is wrong (an empty one would bind every interface unasked)."""
    if not host:
        raise ValueError("host: empty; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    if host.startswith("[") and host.endswith("]"):
        raise ValueError(f"host: write an IPv6 address without brackets, got {host!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not _HOSTNAME.match(host):
            raise ValueError(f"host: expected an IP address or a host name, got {host!r}") from None
    return host


def http_url(url: str, key: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host (and, if given, a valid port); ValueError
    naming ``key`` otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"{key}: not a valid URL ({exc}), got {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: expected an http:// or https:// URL with a host, got {url!r}")
    return url


def redis_url(url: str) -> str:
    """``url`` if redis-py can connect with it (``redis://``, ``rediss://``, ``unix://``; its options
    parsed), checked without connecting; ValueError with redis-py's reason (the URL itself is left out
    of the message: it may hold a password)."""
    from redis.connection import parse_url

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"url: not a Redis URL: {exc}") from None
    return url


# Backends the server stores in, and the drivers accepted in their URLs (the async one is used either way).
DATABASE_DRIVERS: Mapping[str, tuple[str, ...]] = {
    "sqlite": ("", "aiosqlite", "pysqlite"),
    "postgresql": ("", "asyncpg", "psycopg2", "psycopg"),
    "postgres": ("", "asyncpg", "psycopg2", "psycopg"),  # the scheme Heroku and others hand out
}


def database_backend(url: str) -> str:
    """The backend (``sqlite``, ``postgresql``) of a SQLAlchemy URL, parsed with SQLAlchemy's ``make_url``
    (which refuses a port that is not a number) without connecting or loading a dialect; ValueError naming
    what is wrong (the URL is left out: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(
            "url: not a database URL; expected sqlite+aiosqlite:///path/legend.db or "
            "postgresql+asyncpg://user:password@host/database"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")  # not get_driver_name(): it loads the dialect
    if backend not in DATABASE_DRIVERS:
        raise ValueError(f"url: unsupported backend {backend!r}; use sqlite or postgresql")
    if driver not in DATABASE_DRIVERS[backend]:
        raise ValueError(
            f"url: unsupported driver {driver!r} for {backend}; use {backend}+"
            f"{'aiosqlite' if backend == 'sqlite' else 'asyncpg'}"
        )
    return "postgresql" if backend == "postgres" else backend


def trusted_proxy(entry: str) -> None:
    """Check one ``forwarded_allow_ips`` entry (``*``, an address, or a CIDR network without host bits) as
    uvicorn's ProxyHeadersMiddleware parses it; ValueError naming it otherwise, where uvicorn would
    silently keep it as a literal that no client address ever equals."""
    if entry == "*":
        return
    try:
        ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)
    except ValueError as exc:
        raise ValueError(
            f"forwarded_allow_ips: {entry!r} is not an IP address or network (CIDR, no host bits): {exc}"
        ) from None


def jwks_url(url: str) -> str:
    """https, or http to a loopback host (a local identity provider in development and tests)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ValueError(f"jwks_url: not a URL: {url!r}") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
        raise ValueError(f"jwks_url: use https (http is allowed for a loopback host only), got {url!r}")
    raise ValueError(f"jwks_url: expected an https:// URL, got {url!r}")
