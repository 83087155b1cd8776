"""The webhook sender against real local receivers (HTTP servers on 127.0.0.1, allowed for these tests by
``allow_networks``): what a receiver gets (signature, timestamp, idempotency key), what each answer comes to
(delivered, retry with Retry-After, failed; redirects not followed; a slow or endless answer bounded), and
the forgery guard: a forbidden destination is refused without a connection, whatever the URL or the name's
addresses look like, and a send connects to the address that was checked, never to a second lookup's."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpcore
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from legend import __version__
from legend.adapters.notify.guard import (
    DestinationRefused,
    check_url,
    forbidden,
    resolve_checked,
    system_resolve,
)
from legend.adapters.notify.webhook import WebhookSender, retry_after
from legend.domain.notifications import AlertPayload, EmailAddress, Outcome, Webhook
from tests.support.webhook_receiver import WebhookReceiver, delayed, endless, status, verify_signature

SECRET = "whsec_4f9a0c"
NOW = datetime(2026, 5, 11, 14, 30, tzinfo=UTC)
PAYLOAD = AlertPayload(
    alert_id="7:3",
    rule_id=7,
    ticker="AAPL",
    alert_type="price_above",
    threshold=200.0,
    value=201.25,
    trigger_price=201.25,
    current_price=201.25,
    message="AAPL crossed above 200.00",
    triggered_at=NOW,
)
LOCAL = ["127.0.0.0/8"]


def webhook(url: str) -> Webhook:
    return Webhook(id=1, user_id="trader-1", url=url, secret=SECRET, created_at=NOW)


def resolver(*answers: list[str]) -> Any:
    """A resolver answering each lookup with the next list of addresses (the last repeats); ``calls``."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the sender opens (host, port), recorded where httpcore makes it."""
    made: list[tuple[str, int]] = []
    real = httpcore.AnyIOBackend.connect_tcp

    async def connect_tcp(self: httpcore.AnyIOBackend, host: str, port: int, *args: Any, **kw: Any) -> Any:
        made.append((host, port))
        return await real(self, host, port, *args, **kw)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return made


@pytest.fixture
def listeners() -> Iterator[dict[str, socket.socket]]:
    """Bare listening sockets on 127.0.0.1 and ::1: a refused destination pointing at them must leave their
    accept queues empty."""
    socks: dict[str, socket.socket] = {}
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(8)
        sock.setblocking(False)
        socks[host] = sock
    yield socks
    for sock in socks.values():
        sock.close()


def nothing_accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


# ─────────── what a receiver gets, what each answer comes to ───────────


async def test_fails_twice_then_delivered_once_with_a_valid_signature_and_the_idempotency_key() -> None:
    sender = WebhookSender(LOCAL, allow_http=True)
    with WebhookReceiver(status(500, b"database down"), status(500), status(200, b"ok")) as receiver:
        results = [await sender.send(webhook(receiver.url()), PAYLOAD) for _ in range(3)]
    await sender.close()

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY, Outcome.DELIVERED]
    assert results[0].status == 500 and results[0].error == "HTTP 500: database down"
    assert results[2] == msgspec.structs.replace(
        results[2], outcome=Outcome.DELIVERED, status=200, error=None
    )
    assert len(receiver.received) == 3
    assert {r.headers["idempotency-key"] for r in receiver.received} == {"7:3"}
    last = receiver.received[-1]
    assert last.path == "/hook" and last.body == PAYLOAD.body()
    assert verify_signature(SECRET, last.body, last.headers["x-legend-signature"])
    assert not verify_signature("another secret", last.body, last.headers["x-legend-signature"])
    assert not verify_signature(SECRET, last.body + b" ", last.headers["x-legend-signature"])
    t = last.headers["x-legend-signature"].split(",")[0].removeprefix("t=")
    assert last.headers["x-legend-timestamp"] == t and abs(int(t) - time.time()) < 30
    assert last.headers["content-type"] == "application/json"
    assert last.headers["user-agent"] == f"legend-realtime/{__version__}"
    assert msgspec.json.decode(last.body)["triggered_at"] == "2026-05-11T14:30:00.000Z"


async def test_the_signature_recipe_refuses_an_old_timestamp() -> None:
    from legend.domain.notifications import signature

    body = PAYLOAD.body()
    assert verify_signature(SECRET, body, signature(SECRET, int(time.time()) - 60, body))
    assert not verify_signature(SECRET, body, signature(SECRET, int(time.time()) - 600, body))
    assert not verify_signature(SECRET, body, "v1=00")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (None, None), ("soon", None), ("-5", None)],
)
async def test_429_is_retried_after_the_receivers_retry_after(
    header: str | None, expected: float | None
) -> None:
    sender = WebhookSender(LOCAL, allow_http=True)
    answer = status(429, b"slow down", {"Retry-After": header} if header else {})
    with WebhookReceiver(answer) as receiver:
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
    await sender.close()
    assert (result.outcome, result.status, result.retry_after) == (Outcome.RETRY, 429, expected)


async def test_503_with_an_http_date_retry_after() -> None:
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    sender = WebhookSender(LOCAL, allow_http=True)
    with WebhookReceiver(status(503, headers={"Retry-After": later})) as receiver:
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.RETRY and result.retry_after is not None
    assert 80 <= result.retry_after <= 91
    assert result.error == "HTTP 503: Service Unavailable"  # no body: the reason phrase


def test_retry_after_reads_seconds_and_dates() -> None:
    now = 1_800_000_000.0
    assert retry_after("30", now) == 30.0
    assert retry_after(email.utils.formatdate(now + 45, usegmt=True), now) == pytest.approx(45, abs=1)
    assert retry_after(email.utils.formatdate(now - 45, usegmt=True), now) == 0.0
    assert retry_after("Mon, 99 Foo 2026", now) is None
    assert retry_after("inf", now) is None and retry_after("nan", now) is None


@pytest.mark.parametrize("code", [400, 401, 404, 410, 422])
async def test_another_4xx_fails_for_good(code: int) -> None:
    sender = WebhookSender(LOCAL, allow_http=True)
    with WebhookReceiver(status(code, b'{"error": "no such hook"}')) as receiver:
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
    await sender.close()
    assert (result.outcome, result.status) == (Outcome.FAILED, code)
    assert result.error == f'HTTP {code}: {{"error": "no such hook"}}'


@pytest.mark.parametrize("target", ["loopback receiver", "metadata service"])
async def test_a_redirect_fails_and_is_not_followed(target: str) -> None:
    sender = WebhookSender(LOCAL, allow_http=True)
    with WebhookReceiver() as elsewhere:
        location = elsewhere.url("/internal") if target == "loopback receiver" else "http://169.254.169.254/"
        with WebhookReceiver(status(302, headers={"Location": location})) as receiver:
            result = await sender.send(webhook(receiver.url()), PAYLOAD)
    await sender.close()
    assert (result.outcome, result.status) == (Outcome.FAILED, 302)
    assert location in (result.error or "") and "not followed" in (result.error or "")
    assert len(receiver.received) == 1 and elsewhere.connections == 0


async def test_a_slow_receiver_is_retried_after_the_timeout() -> None:
    sender = WebhookSender(LOCAL, allow_http=True, timeout=0.5)
    with WebhookReceiver(delayed(3.0, status(200))) as receiver:
        started = time.monotonic()
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
        took = time.monotonic() - started
    await sender.close()
    assert (result.outcome, result.error) == (Outcome.RETRY, "no answer within 0.5 s")
    assert 0.45 <= took < 1.5


async def test_the_timeout_bounds_the_whole_send_not_each_read() -> None:
    """A receiver trickling its answer a byte at a time never lets one read wait the timeout out; the send
    is still over at the timeout."""
    sender = WebhookSender(LOCAL, allow_http=True, timeout=0.8)
    with WebhookReceiver(endless(200, chunk=b"x", every=0.1, limit=5.0)) as receiver:
        started = time.monotonic()
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
        took = time.monotonic() - started
    await sender.close()
    assert result.outcome is Outcome.RETRY and took < 1.5


async def test_an_endless_answer_is_cut_at_max_body() -> None:
    sender = WebhookSender(LOCAL, allow_http=True, timeout=5.0)
    with WebhookReceiver(endless(200), endless(500, chunk=b"0123456789" * 6554)) as receiver:
        started = time.monotonic()
        delivered = await sender.send(webhook(receiver.url()), PAYLOAD)
        failed = await sender.send(webhook(receiver.url()), PAYLOAD)
        took = time.monotonic() - started
    await sender.close()
    assert delivered.outcome is Outcome.DELIVERED and failed.outcome is Outcome.RETRY
    assert took < 3.0  # read 64 KB and hung up, twice: neither waited for the end nor the timeout
    assert (
        failed.error is not None
        and failed.error.startswith("HTTP 500: 0123456789")
        and len(failed.error) < 250
    )


async def test_max_body_is_the_most_read_of_an_answer() -> None:
    sender = WebhookSender(LOCAL, allow_http=True, max_body=10)
    with WebhookReceiver(status(404, b"0123456789abcdef")) as receiver:
        result = await sender.send(webhook(receiver.url()), PAYLOAD)
    await sender.close()
    assert result.error == "HTTP 404: 0123456789"


async def test_a_dead_receiver_is_retried() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = WebhookSender(LOCAL, allow_http=True)
    result = await sender.send(webhook(f"http://127.0.0.1:{port}/hook"), PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.RETRY and (result.error or "").startswith("cannot reach the receiver")


async def test_a_name_that_does_not_resolve_is_retried() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    sender = WebhookSender(LOCAL, allow_http=True, resolve=nxdomain)
    result = await sender.send(webhook("https://hooks.example.invalid/x"), PAYLOAD)
    await sender.close()
    assert (result.outcome, result.error) == (
        Outcome.RETRY,
        "cannot resolve the host: Name or service not known",
    )


async def test_another_channels_destination_fails() -> None:
    sender = WebhookSender(LOCAL, allow_http=True)
    email = EmailAddress(id=1, user_id="trader-1", address="t@example.com", created_at=NOW)
    result = await sender.send(email, PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.FAILED and "email" in (result.error or "")


# ─────────── the forgery guard ───────────


@pytest.mark.parametrize(
    ("url", "allow_http", "reason"),
    [
        ("https://127.0.0.1:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1/hook", False, "10.0.0.1 is a private address"),
        ("https://192.168.1.20/hook", False, "192.168.1.20 is a private address"),
        ("https://169.254.169.254/latest/meta-data/", False, "169.254.169.254 is a link-local address"),
        ("https://100.64.0.1/hook", False, "100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("https://0.0.0.0:{v4}/hook", False, "0.0.0.0 is an unspecified address"),
        ("https://224.0.0.1/hook", False, "224.0.0.1 is a multicast address"),
        ("https://240.0.0.1/hook", False, "240.0.0.1 is a reserved address"),
        ("https://[::1]:{v6}/hook", False, "::1 is a loopback address"),
        (
            "https://[::ffff:127.0.0.1]:{v4}/hook",
            False,
            "::ffff:7f00:1 (standing for 127.0.0.1) is a loopback address",
        ),
        ("https://[fe80::1]/hook", False, "fe80::1 is a link-local address"),
        ("https://[fd00::1]/hook", False, "fd00::1 is a private address"),
        ("https://2130706433:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        ("https://0x7f.1:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        ("https://localhost:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        ("https://LocalHost.:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        ("https://api.localhost:{v4}/hook", False, "127.0.0.1 is a loopback address"),
        (
            "http://93.184.215.14/hook",
            False,
            "expected an https:// URL, got http scheme (http is not allowed",
        ),
        ("ftp://93.184.215.14/hook", True, "expected an https:// or http:// URL, got ftp scheme"),
        ("https://user:pass@93.184.215.14/hook", False, "a URL with a user name or password is refused"),
        ("https://user@93.184.215.14/hook", False, "a URL with a user name or password is refused"),
        ("https:///hook", False, "the URL has no host"),
        ("https://exa mple.com/hook", False, "not a valid"),
    ],
)
async def test_a_forbidden_destination_is_refused_without_connecting(
    url: str,
    allow_http: bool,
    reason: str,
    connects: list[tuple[str, int]],
    listeners: dict[str, socket.socket],
) -> None:
    url = url.format(v4=listeners["127.0.0.1"].getsockname()[1], v6=listeners["::1"].getsockname()[1])
    lookups = resolver(["127.0.0.1"])
    sender = WebhookSender([], allow_http=allow_http, resolve=lookups)
    result = await sender.send(webhook(url), PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.FAILED and reason in (result.error or ""), result.error
    with pytest.raises(DestinationRefused, match=r".+"):
        check_url(url, allow_http, [])
    assert connects == [] and lookups.calls == []
    assert all(nothing_accepted(sock) for sock in listeners.values())


async def test_userinfo_is_refused_even_in_an_allowed_network(listeners: dict[str, socket.socket]) -> None:
    url = f"http://user:pass@127.0.0.1:{listeners['127.0.0.1'].getsockname()[1]}/hook"
    sender = WebhookSender(LOCAL, allow_http=True)
    result = await sender.send(webhook(url), PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.FAILED and nothing_accepted(listeners["127.0.0.1"])


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        (["127.0.0.1"], "127.0.0.1 is a loopback address"),
        (["93.184.215.14", "127.0.0.1"], "127.0.0.1 is a loopback address"),  # ANY address forbidden
        (["10.1.2.3", "93.184.215.14"], "10.1.2.3 is a private address"),
        (["169.254.169.254"], "169.254.169.254 is a link-local address"),
        (["::ffff:10.0.0.1"], "(standing for 10.0.0.1) is a private address"),
        (["2002:a00:1::1"], "2002:a00:1::1 (standing for 10.0.0.1) is a private address"),  # 6to4 of 10.0.0.1
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused_without_connecting(
    addresses: list[str], refused: str, connects: list[tuple[str, int]]
) -> None:
    lookups = resolver(addresses)
    sender = WebhookSender([], allow_http=False, resolve=lookups)
    result = await sender.send(webhook("https://hooks.example.invalid/x"), PAYLOAD)
    await sender.close()
    assert result.outcome is Outcome.FAILED and refused in (result.error or ""), result.error
    assert lookups.calls == ["hooks.example.invalid"] and connects == []
    check_url("https://hooks.example.invalid/x", False, [])  # a name passes registration; each send checks


async def test_the_system_resolver_refuses_localhost_at_send() -> None:
    assert set(await system_resolve("localhost", 443)) <= {"127.0.0.1", "::1"}
    with pytest.raises(DestinationRefused, match="loopback"):
        await resolve_checked("https://localhost/hook", False, [])


async def test_each_send_resolves_again_and_connects_to_the_checked_address(
    connects: list[tuple[str, int]],
) -> None:
    """DNS rebinding: the name's first answer is allowed, its second forbidden. The first send connects
    to the checked address (httpx itself could not even resolve ``.invalid``), the second never connects."""
    with WebhookReceiver(status(200)) as receiver:
        lookups = resolver(["127.0.0.1"], ["10.0.0.1"])
        sender = WebhookSender(LOCAL, allow_http=True, resolve=lookups)
        url = receiver.url(host="receiver.example.invalid")
        first = await sender.send(webhook(url), PAYLOAD)
        second = await sender.send(webhook(url), PAYLOAD)
        await sender.close()
    assert first.outcome is Outcome.DELIVERED
    assert second.outcome is Outcome.FAILED and "10.0.0.1 is a private address" in (second.error or "")
    assert lookups.calls == ["receiver.example.invalid"] * 2
    assert connects == [("127.0.0.1", receiver.port)]
    assert [r.headers["host"] for r in receiver.received] == [f"receiver.example.invalid:{receiver.port}"]


async def test_every_checked_address_is_tried_in_turn(connects: list[tuple[str, int]]) -> None:
    with WebhookReceiver(status(204)) as receiver:
        sender = WebhookSender(
            ["127.0.0.0/8", "::1/128"], allow_http=True, resolve=resolver(["::1", "127.0.0.1"])
        )
        with socket.socket(socket.AF_INET6) as closed:  # nothing listens on ::1 at the receiver's port
            try:
                closed.bind(("::1", receiver.port))
            except OSError:
                pytest.skip("the receiver's port is taken on ::1")
            result = await sender.send(webhook(receiver.url(host="dual.example.invalid")), PAYLOAD)
        await sender.close()
    assert result.outcome is Outcome.DELIVERED
    assert connects == [("::1", receiver.port), ("127.0.0.1", receiver.port)]


def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA and a server certificate for ``name`` signed by it: the server's context and a client's that
    trusts the CA only."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)

    def build(subject: str, public: Any, signer: Any, ca: bool, san: str | None) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public), critical=False
            ).add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca = build("test CA", ca_key.public_key(), ca_key, True, None)
    leaf = build(name, key.public_key(), ca_key, False, name)
    pem = serialization.Encoding.PEM
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "leaf.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


@pytest.mark.parametrize("certified", ["receiver.example.invalid", "other.example.invalid"])
async def test_https_verifies_the_certificate_for_the_name_on_the_pinned_address(
    tmp_path: Path, certified: str, connects: list[tuple[str, int]]
) -> None:
    """The socket goes to the checked address; TLS still sends the name (SNI) and verifies the certificate
    against it: a certificate for another name is refused (and retried: it may be fixed)."""
    server, client = _certificate(tmp_path, certified)
    with WebhookReceiver(status(200), tls=server) as receiver:
        sender = WebhookSender(LOCAL, allow_http=False, resolve=resolver(["127.0.0.1"]), ssl_context=client)
        result = await sender.send(
            webhook(receiver.url(host="receiver.example.invalid", scheme="https")), PAYLOAD
        )
        await sender.close()
    assert connects == [("127.0.0.1", receiver.port)]
    if certified == "receiver.example.invalid":
        assert result.outcome is Outcome.DELIVERED and len(receiver.received) == 1
    else:
        assert result.outcome is Outcome.RETRY and "certificate" in (result.error or "").lower()
        assert receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
        "https://hooks.example.com:8443/legend?token=abc",
        "https://xn--bcher-kva.example/hook",
    ],
)
def test_the_guard_accepts_a_public_destination(url: str) -> None:
    check_url(url, False, [])  # checked only: nothing is sent off this machine


def test_allowed_networks_let_an_on_premise_receiver_through() -> None:
    check_url("http://10.20.0.5:8080/hook", True, ["10.20.0.0/16"])
    check_url("https://[::ffff:10.20.0.5]/hook", False, ["10.20.0.0/16"])
    with pytest.raises(DestinationRefused, match=re.escape("10.21.0.5 is a private address")):
        check_url("https://10.21.0.5/hook", False, ["10.20.0.0/16"])
    with pytest.raises(ValueError, match=re.escape("allow_networks: '10.20.0.1/16' is not a network")):
        WebhookSender(["10.20.0.1/16"], allow_http=False)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("172.16.0.1", "private"),
        ("198.18.0.1", "private"),
        ("192.0.2.1", "private"),
        ("2001:db8::1", "private"),
        ("255.255.255.255", "reserved"),
        ("ff02::1", "multicast"),
        ("fec0::1", "site-local"),
        ("64:ff9b::7f00:1", "loopback"),
        ("::", "unspecified"),
    ],
)
def test_forbidden_names_the_kind_of_address(address: str, reason: str | None) -> None:
    assert forbidden(ipaddress.ip_address(address)) == reason


async def test_sends_to_different_receivers_run_side_by_side() -> None:
    """A slow receiver costs its own send only: a fast one answered meanwhile is delivered at once."""
    sender = WebhookSender(LOCAL, allow_http=True, timeout=2.0)
    with WebhookReceiver(delayed(1.5, status(200))) as slow, WebhookReceiver(status(200)) as fast:
        started = time.monotonic()
        slow_send = asyncio.create_task(sender.send(webhook(slow.url()), PAYLOAD))
        await asyncio.sleep(0.1)
        quick = await sender.send(webhook(fast.url()), PAYLOAD)
        quick_took = time.monotonic() - started
        assert (await slow_send).outcome is Outcome.DELIVERED
    await sender.close()
    assert quick.outcome is Outcome.DELIVERED and quick_took < 1.0
