"""Web Push (RFC 8030): a trigger encrypted to the browser's subscription keys (RFC 8291, ``aes128gcm``,
with http-ece) and POSTed to its push service with a VAPID signature (RFC 8292, with py-vapid), so the
service worker can show it while no tab of the dashboard is open.

The VAPID key pair identifies this server to the push services: the browser subscribed with its public key
(``applicationServerKey``), so the same pair must be kept for as long as the subscriptions are (made at the
first start and stored with the data, or given in settings as PEM or as the raw key web-push tools print).

What the push service answers decides the outcome: 2xx delivered; 404/410 removed (the browser dropped the
subscription); 429, 5xx, a timeout or a failed connection retry later (honouring ``Retry-After``); any
other answer failed. Only ``https`` endpoints are push services; anything else fails without a connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass, field

import http_ece  # type: ignore[import-untyped]
import httpx
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import sign as sign_jwt  # type: ignore[import-untyped]

from legend.adapters.quotes.vendor import retry_after
from legend.domain.notifications import (
    AlertPayload,
    Channel,
    Destination,
    Outcome,
    PushSubscription,
    SendResult,
)

# The encrypted body of one message: push services accept 4096 bytes at least (RFC 8030 7.2). aes128gcm
# takes a header (16-byte salt, 4-byte record size, key id length, the 65-byte sender key) and, per record,
# a padding delimiter and a 16-byte tag: what is left is the JSON the service worker receives.
MAX_BODY = 4096
MAX_PLAINTEXT = MAX_BODY - (16 + 4 + 1 + 65) - (1 + 16)  # 3993 bytes
TTL_SECONDS = 86400  # the push service keeps a message this long for a browser that is offline
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
JWT_REUSE = 3600  # a signed token is reused for an hour per push service, then signed anew
MAX_CACHED_TOKENS = 64
MAX_DETAIL = 1024  # bytes of an error answer read for the error message
_ELLIPSIS = "…"


class VapidKeyError(ValueError):
    """The VAPID private key text is not one (the message says what was expected)."""


def _b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (the standard alphabet accepted too, as some tools print it)."""
    clean = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    return base64.b64decode(clean + "=" * (-len(clean) % 4), altchars=b"-_", validate=True)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass(frozen=True)
class VapidKeys:
    """This server's VAPID key pair (P-256). ``public_key`` is what browsers subscribe with
    (``applicationServerKey``): base64url of the 65-byte uncompressed point."""

    private_key: ec.EllipticCurvePrivateKey
    public_key: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise VapidKeyError(f"a VAPID key is a P-256 key, not {self.private_key.curve.name}")
        object.__setattr__(self, "public_key", _b64url_encode(_point(self.private_key.public_key())))

    def private_pem(self) -> str:
        """The private key as PKCS#8 PEM, to store it (``load_vapid_keys`` reads it back)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def private_raw(self) -> str:
        """The private key as base64url of its 32-byte scalar (the form web-push tools print)."""
        return _b64url_encode(self.private_key.private_numbers().private_value.to_bytes(32, "big"))


def make_vapid_keys() -> VapidKeys:
    """A new key pair (at the first start, when settings give none)."""
    return VapidKeys(ec.generate_private_key(ec.SECP256R1()))


def load_vapid_keys(text: str) -> VapidKeys:
    """The key pair from its private key as an admin may give it: PEM (PKCS#8 or SEC 1 ``EC PRIVATE KEY``)
    or the base64url of the raw 32-byte scalar. Raises ``VapidKeyError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise VapidKeyError("the VAPID private key is empty")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii", "replace"), password=None)
        except TypeError as exc:  # encrypted PEM
            raise VapidKeyError(
                "the VAPID private key PEM is encrypted: give it without a passphrase"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise VapidKeyError(f"the VAPID private key is not a readable PEM private key ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise VapidKeyError(f"a VAPID key is a P-256 (EC) key, not {type(key).__name__}")
        return VapidKeys(key)
    try:
        raw = _b64url_decode(text)
    except (binascii.Error, ValueError) as exc:
        raise VapidKeyError("the VAPID private key is neither PEM nor base64url") from exc
    if len(raw) != 32:
        raise VapidKeyError(
            f"a raw VAPID private key is 32 bytes in base64url (43 characters); this one is {len(raw)} bytes"
        )
    try:
        return VapidKeys(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
    except ValueError as exc:  # 0, or not below the order of the curve
        raise VapidKeyError("the VAPID private key is not a valid P-256 scalar") from exc


def push_body(payload: AlertPayload, limit: int = MAX_PLAINTEXT) -> bytes | None:
    """``payload.body()``, its message cut (ending in "…") as far as needed to fit ``limit`` bytes; None if
    it cannot fit even without its message."""
    body = payload.body()
    if len(body) <= limit:
        return body
    message, best = payload.message, None
    low, high = 0, len(message) - 1  # the longest prefix that fits: a longer one never encodes shorter
    while low <= high:
        middle = (low + high) // 2
        candidate = msgspec.structs.replace(payload, message=message[:middle] + _ELLIPSIS).body()
        if len(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


def _failed(error: str, status: int | None = None) -> SendResult:
    return SendResult(outcome=Outcome.FAILED, error=error, status=status)


class _Refused(Exception):
    """The subscription cannot be sent to as it stands (the message says why)."""


class PushSender:
    """Sends triggers to Web Push subscriptions (the ``Sender`` of the ``push`` channel).

    ``subject`` is the VAPID ``sub`` a push service may contact (``mailto:`` or ``https:``); ``timeout``
    bounds a whole attempt. ``allow_http`` lets ``http`` endpoints through: only for a local stand-in of a
    push service in the tests. ``transport`` is httpx's (e.g. one that checks where it connects)."""

    channel: Channel = "push"

    def __init__(
        self,
        keys: VapidKeys,
        subject: str,
        timeout: float = 10.0,
        *,
        allow_http: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not any(
            subject.startswith(scheme) and len(subject) > len(scheme) for scheme in ("mailto:", "https://")
        ):
            raise ValueError(f"the VAPID subject is a mailto: or https: URL, not {subject!r}")
        if not timeout > 0:
            raise ValueError(f"the push timeout is a positive number of seconds, not {timeout!r}")
        self.keys = keys
        self.subject = subject
        self._timeout = timeout
        self._allow_http = allow_http
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (Authorization, signed at)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                transport=self._transport,
                headers={"User-Agent": "legend-realtime", "Accept-Encoding": "identity"},  # errors as sent
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def authorization(self, audience: str, now: float | None = None) -> str:
        """``vapid t=<ES256 JWT>, k=<public key>`` for a push service's origin (RFC 8292), reused for an
        hour: one signature serves a burst of triggers to the same service."""
        now = time.time() if now is None else now
        cached = self._tokens.get(audience)
        if cached is not None and now - cached[1] < JWT_REUSE:
            return cached[0]
        claims = {"aud": audience, "exp": int(now) + JWT_LIFETIME, "sub": self.subject}
        header = f"vapid t={sign_jwt(claims, self.keys.private_key)}, k={self.keys.public_key}"
        if len(self._tokens) >= MAX_CACHED_TOKENS:
            self._tokens.clear()
        self._tokens[audience] = (header, now)
        return header

    def _url(self, endpoint: str) -> httpx.URL:
        try:
            url = httpx.URL(endpoint)
        except (httpx.InvalidURL, TypeError) as exc:
            raise _Refused(f"the push endpoint is not a URL ({exc})") from exc
        schemes = ("https", "http") if self._allow_http else ("https",)
        if url.scheme not in schemes:
            raise _Refused(
                f"a push endpoint is an https URL, not {url.scheme or 'relative'}: {endpoint[:200]}"
            )
        if not url.host:
            raise _Refused(f"the push endpoint has no host: {endpoint[:200]}")
        return url

    @staticmethod
    def _encrypt(subscription: PushSubscription, plaintext: bytes) -> bytes:
        """RFC 8291: a fresh sender key pair and salt per message, one record."""
        try:
            receiver = _b64url_decode(subscription.p256dh)
            auth = _b64url_decode(subscription.auth)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver)
        except (binascii.Error, ValueError) as exc:
            raise _Refused("the subscription's p256dh key is not a P-256 public key in base64url") from exc
        if len(auth) != 16:
            raise _Refused(f"the subscription's auth secret is 16 bytes, not {len(auth)}")
        body: bytes = http_ece.encrypt(
            plaintext,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=receiver,
            auth_secret=auth,
            version="aes128gcm",
        )
        return body

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult:
        if not isinstance(destination, PushSubscription):
            return _failed(f"the push sender cannot send to a {type(destination).__name__}")
        plaintext = push_body(payload)
        if plaintext is None:
            return _failed(
                f"the trigger does not fit a push message ({MAX_PLAINTEXT} bytes) even without its message"
            )
        try:
            url = self._url(destination.endpoint)
            body = self._encrypt(destination, plaintext)
        except _Refused as exc:
            return _failed(str(exc))
        headers = {
            "Authorization": self.authorization(f"{url.scheme}://{url.netloc.decode('ascii')}"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_SECONDS),
            "Urgency": "high",
        }
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http().stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    detail = b"" if response.is_success else await _read_at_most(response, MAX_DETAIL)
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(
                outcome=Outcome.RETRY, error=f"the push service did not answer within {self._timeout:g} s"
            )
        except httpx.TransportError as exc:
            return SendResult(
                outcome=Outcome.RETRY, error=f"the push service could not be reached: {_describe(exc)}"
            )
        return _outcome(response, status, detail)


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The start of an answer's body, without reading a large one to its end."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _outcome(response: httpx.Response, status: int, detail: bytes) -> SendResult:
    if 200 <= status < 300:
        return SendResult(outcome=Outcome.DELIVERED, status=status)
    said = " ".join(detail.decode("utf-8", "replace").split())[:200]
    error = f"the push service answered HTTP {status}" + (f": {said}" if said else "")
    if status in (404, 410):
        return SendResult(outcome=Outcome.REMOVED, status=status, error=error + " (the subscription is gone)")
    if status == 429 or status >= 500:
        wait = retry_after(response, time.time())
        return SendResult(outcome=Outcome.RETRY, status=status, error=error, retry_after=wait)
    return _failed(error, status)
