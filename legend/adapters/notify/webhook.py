"""The webhook sender: one signed POST of a trigger to a user's URL, to an address the guard checked.

httpx never resolves a webhook's host itself: the sender resolves it (``resolve_checked``), refuses the send
if any address is forbidden, and pins the checked addresses for the request (a context variable the
connection backend reads). A second lookup, by httpx or anyone, cannot swap in another address, and TLS
still verifies the certificate against the host name (the URL keeps the name; only the socket is pinned).
Connections are pooled per host name, each made to an address that was checked when it was opened.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import math
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpcore
import httpx

from legend import __version__
from legend.adapters.notify.guard import (
    DestinationRefused,
    IPNetwork,
    Resolver,
    networks,
    resolve_checked,
    system_resolve,
)
from legend.domain.notifications import (
    AlertPayload,
    Channel,
    Destination,
    Outcome,
    SendResult,
    Webhook,
    channel_of,
    signature,
)

USER_AGENT = f"legend-realtime/{__version__}"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DETAIL_CHARS = 200  # of a receiver's error body, in the error a user reads


@dataclass(frozen=True)
class _Pin:
    """The checked addresses of the one host and port the current send may connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]


_PIN: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("legend_webhook_pin", default=None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the current send's checked addresses (tried in order), never to a host name and never
    anywhere without a pin: a connection nobody checked is refused (fails closed)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or (pin.host, pin.port) != (host, port):
            raise httpcore.ConnectError(f"{host}:{port} was not checked; not connecting")
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a webhook is never sent to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose backend is ``_PinnedBackend`` (httpx takes no backend
    as a parameter; httpcore's pool does)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,  # one slow receiver must not hold up another's connections
            max_keepalive_connections=50,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(),
        )


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date), None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(when.timestamp() - now, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of a body as sent (not decompressed: no bomb), the rest never read (the
    connection is dropped instead)."""
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk[: limit - len(body)]
        if len(body) >= limit:
            break
    return bytes(body)


def _detail(body: bytes, reason: str) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return (text[:_DETAIL_CHARS] + ("…" if len(text) > _DETAIL_CHARS else "")) or reason


def _retry(error: str, status: int | None = None, after: float | None = None) -> SendResult:
    return SendResult(outcome=Outcome.RETRY, error=error, status=status, retry_after=after)


def _failed(error: str, status: int | None = None) -> SendResult:
    return SendResult(outcome=Outcome.FAILED, error=error, status=status)


class WebhookSender:
    """The Sender of the webhook channel: POSTs ``payload.body()`` signed with the webhook's secret.

    2xx is delivered; 429, 5xx, a timeout or a connection error is retried (``retry_after`` from the
    receiver's Retry-After); a redirect (never followed), another 4xx or a refused destination fails. All of
    a send, from the lookup to the last byte read, takes at most ``timeout`` seconds; at most ``max_body``
    bytes of an answer are read."""

    channel: Channel = "webhook"

    def __init__(
        self,
        allow_networks: Iterable[str | IPNetwork],
        allow_http: bool,
        timeout: float = 5.0,
        max_body: int = 65536,
        *,
        resolve: Resolver = system_resolve,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
        if max_body < 0:
            raise ValueError(f"max_body: expected a number of bytes >= 0, got {max_body!r}")
        self.allow_networks = networks(allow_networks)
        self.allow_http = allow_http
        self.timeout = timeout
        self.max_body = max_body
        self._resolve = resolve
        self._ssl_context = ssl_context
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """The client, made at the first send: loading the CA certificates costs about 20 ms of CPU, which every
        start of a server that sends no webhook would pay."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=_PinnedTransport(self._ssl_context or httpx.create_ssl_context()),
                follow_redirects=False,
                trust_env=False,  # no proxy and no .netrc credentials from the environment
                timeout=httpx.Timeout(self.timeout),
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
        return self._client

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult:
        if not isinstance(destination, Webhook):
            return _failed(f"the webhook sender got a {channel_of(destination)} destination")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._post(destination, payload)
        except DestinationRefused as exc:
            return _failed(exc.reason)
        except (TimeoutError, httpx.TimeoutException):
            return _retry(f"no answer within {self.timeout:g} s")
        except socket.gaierror as exc:
            return _retry(f"cannot resolve the host: {exc.strerror or exc}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _failed(f"not a URL that can be sent to: {exc}")
        except (httpx.HTTPError, OSError) as exc:
            return _retry(f"cannot reach the receiver: {exc or type(exc).__name__}")

    async def _post(self, webhook: Webhook, payload: AlertPayload) -> SendResult:
        url, addresses = await resolve_checked(
            webhook.url, self.allow_http, self.allow_networks, self._resolve
        )
        pin = _Pin(url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[url.scheme], tuple(addresses))
        body = payload.body()
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Legend-Signature": signature(webhook.secret, now, body),
            "X-Legend-Timestamp": str(now),
            "Idempotency-Key": payload.alert_id,
        }
        token = _PIN.set(pin)
        try:
            async with self._http().stream("POST", url, content=body, headers=headers) as response:
                answer = await _read_at_most(response, self.max_body)
        finally:
            _PIN.reset(token)
        return self._result(response, answer)

    def _result(self, response: httpx.Response, body: bytes) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(outcome=Outcome.DELIVERED, status=status)
        if 300 <= status < 400:
            location = response.headers.get("location", "")[:_DETAIL_CHARS]
            return _failed(
                f"HTTP {status}: redirected to {location!r}; redirects are not followed, register the "
                "final URL",
                status,
            )
        detail = f"HTTP {status}: {_detail(body, response.reason_phrase)}"
        if status == 429 or status >= 500:
            return _retry(detail, status, retry_after(response.headers.get("retry-after"), time.time()))
        return _failed(detail, status)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
