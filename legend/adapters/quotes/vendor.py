"""What the HTTP market-data adapters share: one httpx client, request pacing, 429 backoff, error mapping.

Pacing is a sliding window per limit (e.g. 30 requests in any second and 60 in any minute). A 429 closes a
gate for the vendor's ``Retry-After`` (seconds or an HTTP date), else until its ``X-RateLimit-Reset`` (epoch
seconds), else for an exponential backoff (``backoff_initial`` doubling up to ``backoff_max``). A fetch waits
for the gate or for pacing only within its budget; beyond it, the request is not sent (``OutOfBudget``) and
later fetches fail fast, without calling the vendor, until the gate opens.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from legend.adapters.quotes.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from legend.runtime.backoff import Backoff
from legend.settings import QuotesVendorSettings

log = logging.getLogger("legend.quotes")

_USER_AGENT = "legend-realtime (+https://github.com/legend-realtime)"


@dataclass(frozen=True)
class Timing:
    """Where a vendor adapter reads time and how it waits; real time unless a test says otherwise."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # epoch seconds, for X-RateLimit-Reset and HTTP dates
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


class OutOfBudget(Exception):
    """A request was not sent: no slot frees up within this fetch's budget. It goes first next time."""


class RequestRejected(ProviderError):
    """The vendor answered 4xx (other than 401/403/429) with this status and message."""

    def __init__(self, provider: str, status: int, detail: str) -> None:
        super().__init__(provider, f"request rejected (HTTP {status}: {detail})")
        self.status = status
        self.detail = detail


class WindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds, for each (limit, window) pair."""

    def __init__(self, limits: Sequence[tuple[int, float]], timing: Timing) -> None:
        self._windows = [(limit, window, collections.deque[float]()) for limit, window in limits]
        self._timing = timing

    async def acquire(self, deadline: float) -> bool:
        """Take a slot, waiting if need be; False (and no slot) when none frees up before ``deadline``."""
        while True:
            now = self._timing.monotonic()
            wait = 0.0
            for limit, window, sent in self._windows:
                while sent and sent[0] <= now - window:
                    sent.popleft()
                if len(sent) >= limit:
                    wait = max(wait, sent[0] + window - now)
            if wait <= 0:
                for _, _, sent in self._windows:
                    sent.append(now)
                return True
            if now + wait > deadline:
                return False
            await self._timing.sleep(wait)


@dataclass
class VendorStats:
    """Counters an admin reads to see how a vendor is treating us."""

    requests: int = 0
    rate_limited: int = 0  # HTTP 429 answers
    deferred: int = 0  # requests not sent for lack of budget (taken first in the next fetch)
    errors: int = 0  # failed requests other than 429
    last_error: str | None = None
    blocked_until: float = field(default=float("-inf"), repr=False)  # monotonic


def retry_after(response: httpx.Response, wall: float) -> float | None:
    """Seconds the vendor asks us to wait: Retry-After (seconds or HTTP date), else X-RateLimit-Reset."""
    value = response.headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                return max(email.utils.parsedate_to_datetime(value).timestamp() - wall, 0.0)
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            at = float(reset)
        except ValueError:
            return None
        # An epoch (seconds, or milliseconds) or, from some vendors, seconds from now.
        if at > 1e11:
            at /= 1000.0
        return max(at - wall, 0.0) if at > 1e9 else max(at, 0.0)
    return None


def _detail(response: httpx.Response) -> str:
    """The vendor's own words from an error body, short."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] or response.reason_phrase
    if isinstance(body, Mapping):
        for key in ("error", "message", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return str(body)[:200]


class VendorClient:
    """GET JSON from one vendor, paced and backed off; errors mapped onto the ProviderError family."""

    def __init__(
        self,
        *,
        provider: str,
        settings: QuotesVendorSettings,
        headers: Mapping[str, str],
        limits: Sequence[tuple[int, float]],
        key_hint: str,
        timing: Timing | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.timing = timing or Timing()
        self.stats = VendorStats()
        self._base_url = settings.base_url.rstrip("/")
        self._headers = {"User-Agent": _USER_AGENT, "Accept": "application/json", **headers}
        self._timeout = settings.timeout
        self._limiter = WindowLimiter(limits, self.timing)
        self._max_retries = settings.max_retries
        self._backoff = Backoff(settings.backoff_initial, maximum=settings.backoff_max)  # after 429s in a row
        self._key_hint = key_hint
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=self._headers,
                timeout=httpx.Timeout(self._timeout),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def blocked_for(self) -> float:
        """Seconds until the 429 gate opens (0 when open)."""
        return max(self.stats.blocked_until - self.timing.monotonic(), 0.0)

    def counters(self) -> dict[str, object]:
        """Request, 429 and error counters, and how long the vendor still blocks us (a provider's stats)."""
        s = self.stats
        return {
            "requests": s.requests,
            "rate_limited": s.rate_limited,
            "deferred": s.deferred,
            "errors": s.errors,
            "last_error": s.last_error,
            "blocked_for": round(self.blocked_for(), 3),
        }

    def _rate_limited(self, response: httpx.Response) -> float:
        backoff = self._backoff.next()  # a strike, whether or not the vendor says how long to wait
        self.stats.rate_limited += 1
        delay = retry_after(response, self.timing.wall())
        if delay is None:
            delay = backoff
        self.stats.blocked_until = max(self.stats.blocked_until, self.timing.monotonic() + delay)
        return delay

    def _fail(self, error: ProviderError) -> ProviderError:
        self.stats.errors += 1
        self.stats.last_error = str(error)
        return error

    async def get_json(self, path: str, params: Mapping[str, str], deadline: float) -> Any:
        """The decoded JSON body of a 200 answer to ``GET path?params``.

        Raises OutOfBudget (not sent), ProviderRateLimited, ProviderAuthError, ProviderUnavailable or
        RequestRejected.
        """
        attempts = 0
        while True:
            wait = self.blocked_for()
            if wait > 0:
                if self.timing.monotonic() + wait > deadline:
                    raise ProviderRateLimited(
                        self.provider,
                        f"rate limited by the vendor (HTTP 429); next try in {wait:.1f} s",
                        retry_after=wait,
                    )
                await self.timing.sleep(wait)
            if not await self._limiter.acquire(deadline):
                self.stats.deferred += 1
                raise OutOfBudget(path)
            self.stats.requests += 1
            try:
                response = await self._http().get(path, params=params)
            except httpx.TimeoutException:
                raise self._fail(
                    ProviderUnavailable(
                        self.provider, f"no answer from {self._base_url} within {self._timeout} s"
                    )
                ) from None
            except httpx.HTTPError as exc:
                raise self._fail(
                    ProviderUnavailable(
                        self.provider, f"cannot reach {self._base_url}: {exc or type(exc).__name__}"
                    )
                ) from None
            status = response.status_code
            if status == 429:
                delay = self._rate_limited(response)
                attempts += 1
                log.warning("%s: HTTP 429, waiting %.1f s (attempt %d)", self.provider, delay, attempts)
                if attempts > self._max_retries:
                    raise ProviderRateLimited(
                        self.provider,
                        f"rate limited by the vendor (HTTP 429) {attempts} times in a row; "
                        f"next try in {delay:.1f} s",
                        retry_after=delay,
                    )
                continue
            if status in (401, 403):
                raise self._fail(
                    ProviderAuthError(
                        self.provider,
                        f"the API key was refused (HTTP {status}: {_detail(response)}); check {self._key_hint}",
                    )
                )
            if status >= 500:
                raise self._fail(
                    ProviderUnavailable(self.provider, f"server error (HTTP {status}: {_detail(response)})")
                )
            if status != 200:
                raise self._fail(RequestRejected(self.provider, status, _detail(response)))
            self._backoff.reset()
            try:
                return response.json()
            except ValueError:
                raise self._fail(
                    ProviderUnavailable(self.provider, f"the answer to {path} is not JSON")
                ) from None


def first_failure(provider: str, errors: Sequence[BaseException]) -> ProviderError:
    """The error that explains a fetch that got nothing: a refused key, then rate limiting, then the rest."""
    for kind in (ProviderAuthError, ProviderRateLimited):
        for error in errors:
            if isinstance(error, kind):
                return error
    for error in errors:
        if isinstance(error, ProviderError):
            return error
    if any(isinstance(error, OutOfBudget) for error in errors):
        return ProviderRateLimited(
            provider, "no request fitted in the fetch budget (client-side pacing)", retry_after=1.0
        )
    return ProviderError(provider, f"unexpected failure: {errors[0]!r}" if errors else "nothing fetched")


def number(value: object) -> float | None:
    """A JSON number as float (bools and non-finite values are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if result == result and result not in (float("inf"), float("-inf")) else None
