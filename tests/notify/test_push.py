"""The Web Push sender against a push service stand-in on 127.0.0.1: the stand-in checks the VAPID JWT
(ES256 with the key of ``k=``, the key the subscription was made with, ``aud`` its origin, ``exp`` within 24
hours) and decrypts the RFC 8291 payload with the subscription's private key (its own decryption, checked
on the RFC's example message), as a push service and then the browser would. Its answers decide the
outcome: 2xx delivered, 404/410 removed, 429/5xx/timeouts retried, the rest failed."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from legend.adapters.notify.push import (
    MAX_BODY,
    MAX_PLAINTEXT,
    PushSender,
    VapidKeyError,
    load_vapid_keys,
    make_vapid_keys,
    push_body,
)
from legend.domain.notifications import AlertPayload, EmailAddress, Outcome, PushSubscription
from tests.support.loopback import free_port

SUBJECT = "mailto:alerts@legend.example"


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def decrypt_rfc8291(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """What the browser does with a push message (RFC 8291 section 3, RFC 8188 section 2), written out."""
    salt, rs, id_length = body[:16], struct.unpack("!L", body[16:20])[0], body[20]
    as_public, ciphertext = body[21 : 21 + id_length], body[21 + id_length :]
    assert id_length == 65 and rs >= 18, (id_length, rs)
    assert len(ciphertext) <= rs, "one record"
    ua_public = point(ua_private)
    shared = ua_private.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    )
    ikm = hkdf(auth_secret, shared, b"WebPush: info\0" + ua_public + as_public, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\0", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\0", 12)
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\0")
    assert padded.endswith(b"\x02"), "the last record's delimiter"
    return padded[:-1]


def test_the_stand_in_decrypts_the_example_of_rfc_8291() -> None:
    """Appendix A of RFC 8291: the stand-in's decryption is the RFC's, not the sender's library's."""
    ua_private = ec.derive_private_key(
        int.from_bytes(b64d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"), ec.SECP256R1()
    )
    body = b64d(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6"
        "PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    )
    assert decrypt_rfc8291(body, ua_private, b64d("BTBZMqHH6r4Tts7J_aSIgg")) == (
        b"When I grow up, I want to be a watermelon"
    )


@dataclass
class Browser:
    """A subscription as a browser makes one: a P-256 key pair and a 16-byte auth secret, bound to the
    application server key it subscribed with."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str


def browser_subscription(endpoint: str, application_server_key: str) -> tuple[PushSubscription, Browser]:
    browser = Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16), application_server_key)
    subscription = PushSubscription(
        id=1,
        user_id="trader",
        endpoint=endpoint,
        p256dh=b64e(point(browser.private_key)),
        auth=b64e(browser.auth),
        created_at=datetime.now(UTC),
    )
    return subscription, browser


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any]
    plaintext: bytes


@dataclass
class PushServiceStandIn:
    """A push service on 127.0.0.1 (http: the sender is told to allow it). A POST to an unknown path is
    404; a bad signature or a key other than the subscription's is 403; a body that does not decrypt 400;
    otherwise the next scripted answer, else 201."""

    browsers: dict[str, Browser] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    requests: int = 0

    def __post_init__(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                service.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers = service.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def subscribe(self, application_server_key: str) -> PushSubscription:
        path = f"/wpush/v2/{os.urandom(8).hex()}"
        subscription, self.browsers[path] = browser_subscription(self.origin + path, application_server_key)
        return subscription

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        browser = self.browsers.get(path)
        if browser is None:
            return 404, {}
        try:
            scheme, _, params = headers["Authorization"].partition(" ")
            assert scheme == "vapid", scheme
            fields = dict(part.strip().split("=", 1) for part in params.split(","))
            assert fields["k"] == browser.application_server_key, "not the key the subscription was made with"
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(fields["k"]))
            claims = jwt.decode(
                fields["t"],
                key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "sub"]},
            )
            assert claims["exp"] <= time.time() + 24 * 3600, "exp beyond 24 hours"
        except (AssertionError, KeyError, ValueError, jwt.PyJWTError) as exc:
            self.errors.append(f"VAPID: {exc!r}")
            return 403, {}
        try:
            assert headers.get("Content-Encoding") == "aes128gcm", headers.get("Content-Encoding")
            plaintext = decrypt_rfc8291(body, browser.private_key, browser.auth)
        except Exception as exc:
            self.errors.append(f"payload: {exc!r}")
            return 400, {}
        self.received.append(Received(path, headers, body, claims, plaintext))
        return self.answers.popleft() if self.answers else (201, {})


@pytest.fixture
def service() -> Iterator[PushServiceStandIn]:
    stand_in = PushServiceStandIn()
    yield stand_in
    stand_in.close()


def alert(message: str = "AAPL crossed above 190.00") -> AlertPayload:
    return AlertPayload(
        alert_id="7:3",
        rule_id=7,
        ticker="AAPL",
        alert_type="price_above",
        threshold=190.0,
        value=190.25,
        trigger_price=190.25,
        current_price=190.25,
        message=message,
        triggered_at=datetime(2024, 5, 6, 14, 30, 1, 250000, tzinfo=UTC),
    )


async def test_a_trigger_reaches_the_push_service_signed_and_encrypted(service: PushServiceStandIn) -> None:
    keys = make_vapid_keys()
    subscription = service.subscribe(keys.public_key)
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        first = await sender.send(subscription, alert())
        second = await sender.send(subscription, alert("again"))
    finally:
        await sender.close()
    assert service.errors == []
    assert (first.outcome, first.status, first.error) == (Outcome.DELIVERED, 201, None)
    assert second.outcome is Outcome.DELIVERED
    one, two = service.received
    assert one.plaintext == alert().body() and two.plaintext == alert("again").body()
    assert one.body[:16] != two.body[:16] and one.body[21:86] != two.body[21:86], "a fresh salt and key each"
    assert one.headers["TTL"] == "86400" and one.headers["Urgency"] == "high"
    assert one.headers["Content-Type"] == "application/octet-stream"
    assert one.claims["aud"] == service.origin and one.claims["sub"] == SUBJECT
    assert 11.9 * 3600 < one.claims["exp"] - time.time() <= 12 * 3600
    assert b64d(keys.public_key)[0] == 4 and len(b64d(keys.public_key)) == 65


async def test_a_key_other_than_the_subscriptions_is_refused_and_fails(service: PushServiceStandIn) -> None:
    subscription = service.subscribe(make_vapid_keys().public_key)
    sender = PushSender(make_vapid_keys(), SUBJECT, allow_http=True)
    try:
        result = await sender.send(subscription, alert())
    finally:
        await sender.close()
    assert (result.outcome, result.status) == (Outcome.FAILED, 403)
    assert "HTTP 403" in (result.error or "") and service.received == []
    assert "not the key the subscription was made with" in service.errors[0]


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (410, {}, Outcome.REMOVED, None),
        (404, {}, Outcome.REMOVED, None),
        (500, {}, Outcome.RETRY, None),
        (503, {"Retry-After": "120"}, Outcome.RETRY, 120.0),
        (429, {"Retry-After": "30"}, Outcome.RETRY, 30.0),
        (400, {}, Outcome.FAILED, None),
        (413, {}, Outcome.FAILED, None),
        (202, {}, Outcome.DELIVERED, None),
    ],
)
async def test_the_push_services_answer_decides_the_outcome(
    service: PushServiceStandIn,
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    keys = make_vapid_keys()
    subscription = service.subscribe(keys.public_key)
    service.answers.append((status, headers))
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        result = await sender.send(subscription, alert())
    finally:
        await sender.close()
    assert service.errors == [] and len(service.received) == 1, "the request itself was valid"
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, retry_after)
    assert (result.error is None) == (outcome is Outcome.DELIVERED)


async def test_an_unknown_subscription_is_removed(service: PushServiceStandIn) -> None:
    keys = make_vapid_keys()
    subscription = service.subscribe(keys.public_key)
    gone = msgspec.structs.replace(subscription, endpoint=service.origin + "/wpush/v2/unsubscribed")
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        result = await sender.send(gone, alert())
    finally:
        await sender.close()
    assert (result.outcome, result.status) == (Outcome.REMOVED, 404)


async def test_a_silent_push_service_is_retried_within_the_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        keys = make_vapid_keys()
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}/push"
        subscription, _ = browser_subscription(endpoint, keys.public_key)
        sender = PushSender(keys, SUBJECT, timeout=0.5, allow_http=True)
        started = time.monotonic()
        try:
            result = await sender.send(subscription, alert())
        finally:
            await sender.close()
    assert time.monotonic() - started < 3
    assert result.outcome is Outcome.RETRY and "did not answer within 0.5 s" in (result.error or "")


async def test_a_refused_connection_is_retried() -> None:
    keys = make_vapid_keys()
    subscription, _ = browser_subscription(f"http://127.0.0.1:{free_port()}/push", keys.public_key)
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        result = await sender.send(subscription, alert())
    finally:
        await sender.close()
    assert result.outcome is Outcome.RETRY and "could not be reached" in (result.error or "")


@pytest.mark.parametrize(
    ("endpoint", "error"),
    [
        (None, "is an https URL, not http"),  # the stand-in's own http endpoint, without allow_http
        ("ftp://push.example/x", "is an https URL, not ftp"),
        ("/relative/path", "is an https URL, not relative"),
        ("https:///no-host", "has no host"),
    ],
)
async def test_an_endpoint_that_is_not_https_fails_without_a_connection(
    service: PushServiceStandIn, endpoint: str | None, error: str
) -> None:
    keys = make_vapid_keys()
    subscription = service.subscribe(keys.public_key)
    if endpoint is not None:
        subscription = msgspec.structs.replace(subscription, endpoint=endpoint)
    sender = PushSender(keys, SUBJECT)  # allow_http is off
    try:
        result = await sender.send(subscription, alert())
    finally:
        await sender.close()
    assert result.outcome is Outcome.FAILED and error in (result.error or ""), result.error
    assert service.requests == 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"p256dh": "not base64url!"}, "p256dh key is not a P-256 public key"),
        ({"p256dh": b64e(b"\x04" + bytes(64))}, "p256dh key is not a P-256 public key"),  # not on the curve
        ({"auth": b64e(bytes(8))}, "auth secret is 16 bytes, not 8"),
    ],
)
async def test_a_subscription_with_bad_keys_fails_without_a_connection(
    service: PushServiceStandIn, change: dict[str, str], error: str
) -> None:
    keys = make_vapid_keys()
    subscription = msgspec.structs.replace(service.subscribe(keys.public_key), **change)
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        result = await sender.send(subscription, alert())
        other = await sender.send(
            EmailAddress(id=1, user_id="trader", address="a@b.example", created_at=datetime.now(UTC)), alert()
        )
    finally:
        await sender.close()
    assert result.outcome is Outcome.FAILED and error in (result.error or ""), result.error
    assert other.outcome is Outcome.FAILED and "cannot send to a EmailAddress" in (other.error or "")
    assert service.requests == 0


async def test_a_long_message_is_cut_to_fit_one_push_message(service: PushServiceStandIn) -> None:
    keys = make_vapid_keys()
    subscription = service.subscribe(keys.public_key)
    message = 'Ünïcødé "quoted" ✓ ' * 600  # multi-byte characters and JSON escapes, ~14 KB
    sender = PushSender(keys, SUBJECT, allow_http=True)
    try:
        result = await sender.send(subscription, alert(message))
    finally:
        await sender.close()
    assert result.outcome is Outcome.DELIVERED and service.errors == []
    (received,) = service.received
    assert len(received.body) <= MAX_BODY and MAX_PLAINTEXT - 8 <= len(received.plaintext) <= MAX_PLAINTEXT
    sent = json.loads(received.plaintext)
    assert sent["message"].endswith("…") and message.startswith(sent["message"][:-1])
    assert {**sent, "message": message} == json.loads(alert(message).body())


def test_push_body_keeps_what_fits_and_gives_up_on_what_cannot() -> None:
    assert push_body(alert()) == alert().body()
    exact = alert("x" * (MAX_PLAINTEXT - len(alert("").body())))
    assert push_body(exact) == exact.body() and len(exact.body()) == MAX_PLAINTEXT
    assert push_body(alert(), limit=len(alert("").body()) - 1) is None


def test_a_signed_token_is_reused_for_an_hour_per_push_service() -> None:
    sender = PushSender(make_vapid_keys(), SUBJECT)
    first = sender.authorization("https://fcm.googleapis.com", now=1_700_000_000)
    assert sender.authorization("https://fcm.googleapis.com", now=1_700_003_000) == first
    assert sender.authorization("https://updates.push.services.mozilla.com", now=1_700_003_000) != first
    renewed = sender.authorization("https://fcm.googleapis.com", now=1_700_003_601)
    assert renewed != first
    token = renewed.split("t=")[1].split(",")[0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {"aud": "https://fcm.googleapis.com", "exp": 1_700_003_601 + 12 * 3600, "sub": SUBJECT}


def test_keys_saved_as_pem_load_back_with_the_same_public_key() -> None:
    keys = make_vapid_keys()
    pem = keys.private_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert load_vapid_keys(pem).public_key == keys.public_key
    assert load_vapid_keys(f"\n  {pem}  \n").public_key == keys.public_key
    assert load_vapid_keys(keys.private_raw()).public_key == keys.public_key
    sec1 = keys.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert (
        sec1.startswith("-----BEGIN EC PRIVATE KEY-----")
        and load_vapid_keys(sec1).public_key == keys.public_key
    )
    assert make_vapid_keys().public_key != keys.public_key


def test_a_raw_key_as_web_push_tools_print_it_loads() -> None:
    """The application server key pair of RFC 8291 Appendix A: private scalar in, its public point out."""
    keys = load_vapid_keys("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")
    assert keys.public_key == (
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
    )
    assert load_vapid_keys("yfWPiYE+n46HLnH0KqZOF1fJJU3MYrct3AELtAQ+oRw=").public_key == keys.public_key


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("not a key at all", "neither PEM nor base64url"),
        (b64e(bytes(16)), "this one is 16 bytes"),
        (b64e(bytes(32)), "not a valid P-256 scalar"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "not a readable PEM private key"),
        (
            ec.generate_private_key(ec.SECP384R1())
            .private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode(),
            "P-256 key, not secp384r1",
        ),
        (
            rsa.generate_private_key(65537, 2048)
            .private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode(),
            "P-256 (EC) key, not",
        ),
        (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
            .decode(),
            "encrypted",
        ),
    ],
)
def test_a_bad_vapid_key_is_a_clear_error(text: str, error: str) -> None:
    with pytest.raises(VapidKeyError, match=re.escape(error)):
        load_vapid_keys(text)


@pytest.mark.parametrize(
    "subject", ["alerts@legend.example", "mailto:", "https://", "http://legend.example", ""]
)
def test_the_subject_is_a_mailto_or_https_url(subject: str) -> None:
    with pytest.raises(ValueError, match="VAPID subject"):
        PushSender(make_vapid_keys(), subject)
