"""The e-mail sender against a real SMTP server (aiosmtpd) on a free port of 127.0.0.1: the message that
arrives (one per trigger, a plain-text and an escaped HTML part, the headers), what the server's replies
come to (4xx retry, 5xx failed), a server down or silent, STARTTLS and TLS with a certificate made here,
and addresses that must never reach a server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from legend.adapters.notify.email import EmailSender, SmtpConfig, address_problem
from legend.domain.notifications import AlertPayload, EmailAddress, Outcome, Webhook
from tests.support.certificates import Certificates, make_certificates
from tests.support.loopback import free_port

FROM = "alerts@legend.example"
TO = "trader@example.com"


def payload(**changes: Any) -> AlertPayload:
    fields: dict[str, Any] = {
        "alert_id": "12:3",
        "rule_id": 12,
        "ticker": "AAPL",
        "alert_type": "breakout",
        "threshold": 150.0,
        "value": 150.25,
        "trigger_price": 150.25,
        "current_price": 150.31,
        "message": "AAPL breaking out at $150.25 (target: $150.00)",
        "triggered_at": datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC),
    }
    return AlertPayload(**{**fields, **changes})


def to(address: str = TO) -> EmailAddress:
    return EmailAddress(id=1, user_id="u1", address=address, created_at=datetime.now(UTC))


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Inbox:
    """The aiosmtpd handler: keeps what arrives; ``replies`` makes a stage (MAIL, RCPT, DATA) answer so."""

    replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if "DATA" in self.replies:
            return self.replies["DATA"]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        tls = server.transport.get_extra_info("ssl_object") is not None  # after STARTTLS or from the start
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, tls, login))
        return "250 2.0.0 queued"


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int


def accept_trader(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"trader", b"s3cret")
    return AuthResult(success=ok, auth_data=data)


@pytest.fixture
def start_server() -> Iterator[Any]:
    """``start(**aiosmtpd parameters)`` -> a running SmtpServer; all stopped after the test."""
    controllers: list[Controller] = []

    def start(**parameters: Any) -> SmtpServer:
        inbox = Inbox()
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **parameters)
        controller.start()
        controllers.append(controller)
        return SmtpServer(inbox, port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


def config(port: int, **changes: Any) -> SmtpConfig:
    return SmtpConfig(
        **{"host": "127.0.0.1", "port": port, "starttls": False, "from_address": FROM, **changes}
    )


async def test_one_message_per_trigger_with_a_text_and_an_html_part_and_the_headers(
    start_server: Any,
) -> None:
    server = start_server()
    sender = EmailSender(config(server.port, from_address=f"Legend Alerts <{FROM}>"))

    result = await sender.send(to(), payload())

    assert result.outcome is Outcome.DELIVERED, result
    [mail] = server.inbox.received
    assert (mail.mail_from, mail.rcpt_tos) == (FROM, [TO])
    message = mail.message
    assert message["Subject"] == "AAPL: breakout alert"
    assert message["From"] == f"Legend Alerts <{FROM}>"
    assert message["To"] == TO
    assert message["Message-ID"] == "<alert-12%3A3@legend.example>"
    assert message["X-Legend-Alert-Id"] == "12:3"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, markup = (part.get_content() for part in parts)
    for body in (text, markup):
        assert "AAPL breaking out at $150.25 (target: $150.00)" in body
        assert "$150.31" in body and "2026-03-02T14:30:05.000Z" in body

    # a resend of the trigger is the same message (Message-ID); another trigger is another one
    await sender.send(to(), payload())
    await sender.send(to(), payload(alert_id="12:4"))
    ids = [mail.message["Message-ID"] for mail in server.inbox.received]
    assert ids == ["<alert-12%3A3@legend.example>"] * 2 + ["<alert-12%3A4@legend.example>"]


async def test_a_ticker_or_message_holding_html_is_escaped_in_the_html_part(start_server: Any) -> None:
    server = start_server()
    message = "<script>alert('x')</script> & \"quoted\" <b>bold</b>"
    result = await EmailSender(config(server.port)).send(to(), payload(ticker="A<i>&B", message=message))

    assert result.outcome is Outcome.DELIVERED, result
    text, markup = (part.get_content() for part in server.inbox.received[0].message.iter_parts())
    assert message in text
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot; &lt;b&gt;bold&lt;/b&gt;"
        in markup
    )
    assert "A&lt;i&gt;&amp;B" in markup
    assert "<script>" not in markup and "<i>" not in markup and "<b>" not in markup


@pytest.mark.parametrize(
    ("stage", "reply", "outcome"),
    [
        ("RCPT", "550 5.1.1 <trader@example.com>: mailbox unknown", Outcome.FAILED),
        ("RCPT", "450 4.2.1 mailbox busy, try later", Outcome.RETRY),
        ("DATA", "451 4.3.0 temporary failure, try again", Outcome.RETRY),
        ("DATA", "554 5.7.1 rejected as spam", Outcome.FAILED),
        ("MAIL", "553 5.7.1 sender not allowed", Outcome.FAILED),
        ("MAIL", "421 4.7.0 too many connections", Outcome.RETRY),
    ],
)
async def test_a_4xx_reply_is_retried_and_a_5xx_reply_fails(
    start_server: Any, stage: str, reply: str, outcome: Outcome
) -> None:
    server = start_server()
    server.inbox.replies[stage] = reply

    result = await EmailSender(config(server.port)).send(to(), payload())

    code, text = reply.split(" ", 1)
    assert (result.outcome, result.status) == (outcome, int(code))
    assert result.error is not None and text in result.error
    assert server.inbox.received == []


async def test_a_server_that_is_down_is_retried() -> None:
    port = free_port()  # nothing listens there
    result = await EmailSender(config(port)).send(to(), payload())
    assert result.outcome is Outcome.RETRY
    assert result.error is not None and f"127.0.0.1:{port}" in result.error


async def test_a_server_that_never_answers_is_retried_within_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # no greeting, ever

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        result = await EmailSender(config(port), timeout=0.5).send(to(), payload())
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert result.outcome is Outcome.RETRY, result
    assert elapsed < 3.0


async def test_starttls_with_a_trusted_certificate_and_a_login(
    start_server: Any, certificates: Certificates
) -> None:
    server = start_server(
        tls_context=certificates.server_context(), require_starttls=True, authenticator=accept_trader
    )
    sender = EmailSender(
        config(
            server.port,
            starttls=True,
            ca_file=str(certificates.ca_file),
            username="trader",
            password="s3cret",
        )
    )

    result = await sender.send(to(), payload())

    assert result.outcome is Outcome.DELIVERED, result
    [mail] = server.inbox.received
    assert mail.tls and mail.login == b"trader"


async def test_starttls_against_a_certificate_not_trusted_is_retried_and_sends_nothing(
    start_server: Any, certificates: Certificates
) -> None:
    server = start_server(tls_context=certificates.server_context(), require_starttls=True)
    result = await EmailSender(config(server.port, starttls=True)).send(to(), payload())
    assert result.outcome is Outcome.RETRY
    assert result.error is not None and "certificate" in result.error.lower()
    assert server.inbox.received == []


async def test_starttls_required_but_not_offered_never_sends_in_the_clear(start_server: Any) -> None:
    server = start_server()  # no tls_context: the server offers no STARTTLS
    result = await EmailSender(config(server.port, starttls=True)).send(to(), payload())
    assert result.outcome is Outcome.RETRY
    assert result.error is not None and "STARTTLS" in result.error
    assert server.inbox.received == []


async def test_implicit_tls(start_server: Any, certificates: Certificates) -> None:
    server = start_server(ssl_context=certificates.server_context())
    sender = EmailSender(config(server.port, tls=True, ca_file=str(certificates.ca_file)))

    result = await sender.send(to(), payload())

    assert result.outcome is Outcome.DELIVERED, result
    assert server.inbox.received[0].tls


BAD_ADDRESSES = [
    "victim@example.com\r\nBcc: evil@example.com",
    "victim@example.com\nBcc: evil@example.com",
    "victim@example.com\r\n",
    "victim@example.com, evil@example.com",
    "Eve <evil@example.com>",
    "<victim@example.com>",
    "victim@example.com>\r\nRCPT TO:<evil@example.com",
    "no-at-sign",
    "two@at@example.com",
    "",
    "trader @example.com",
    "jos\u00e9@example.com",
    "dots..twice@example.com",
    "trader@-example.com",
    "trader@example..com",
    "x" * 65 + "@example.com",
    "trader@" + ".".join(["b" * 60] * 4) + ".example.com",  # 262 characters
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
async def test_an_invalid_address_fails_and_never_reaches_the_server(address: str) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    listener = await asyncio.start_server(count, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await EmailSender(config(port)).send(to(address), payload())
        await asyncio.sleep(0.05)
    finally:
        listener.close()
    assert result.outcome is Outcome.FAILED
    assert result.error and address_problem(address) == result.error
    assert connections == 0


def test_good_addresses_pass() -> None:
    for address in ("trader@example.com", "first.last+alerts@mail.example.co.uk", "o'neil@example.com"):
        assert address_problem(address) is None, address


async def test_a_line_break_in_the_ticker_cannot_add_a_header_or_a_recipient(start_server: Any) -> None:
    server = start_server()
    result = await EmailSender(config(server.port)).send(
        to(), payload(ticker="AAPL\r\nBcc: evil@example.com", alert_type="breakout\nX-Evil: 1")
    )
    assert result.outcome is Outcome.DELIVERED, result
    [mail] = server.inbox.received
    assert mail.rcpt_tos == [TO]
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert mail.message["Subject"] == "AAPL Bcc: evil@example.com: breakout X-Evil: 1 alert"


async def test_an_alert_id_that_cannot_be_a_header_fails_without_sending(start_server: Any) -> None:
    server = start_server()
    result = await EmailSender(config(server.port)).send(to(), payload(alert_id="1:2\r\nBcc: evil@x.com"))
    assert result.outcome is Outcome.FAILED
    assert server.inbox.received == []


async def test_a_destination_of_another_channel_fails() -> None:
    webhook = Webhook(id=1, user_id="u1", url="https://x.example", secret="s", created_at=datetime.now(UTC))
    result = await EmailSender(config(free_port())).send(webhook, payload())
    assert result.outcome is Outcome.FAILED


def test_the_config_from_settings_and_its_errors(tmp_path: Path) -> None:
    settings = {"host": "smtp.example.com", "port": 465, "starttls": False, "tls": True,
                "username": "u", "password": "hunter2", "from_address": "Legend <alerts@example.com>"}  # fmt: skip
    parsed = msgspec.convert(settings, SmtpConfig)
    assert parsed.tls and parsed.port == 465
    assert "hunter2" not in repr(parsed)

    for changes, words in [
        ({"starttls": True}, "exclude each other"),
        ({"from_address": "alerts@example.com\r\nBcc: x@y.com"}, "from_address"),
        ({"from_address": "not an address"}, "from_address"),
        ({"port": 0}, "port"),
        ({"host": "smtp.example.com\r\n"}, "host"),
        ({"username": None}, "needs a username"),
    ]:
        with pytest.raises(msgspec.ValidationError, match=words):
            msgspec.convert({**settings, **changes}, SmtpConfig)

    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="ca_file"):
        EmailSender(SmtpConfig(host="smtp.example.com", from_address=FROM, ca_file=missing))
