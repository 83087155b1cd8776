"""E-mail for alert triggers over SMTP (aiosmtplib): one message per trigger and address, with a plain-text
and an HTML part, through the relay of ``[notifications.smtp]``.

- The address is checked before anything is sent: one ASCII ``local@domain`` and nothing else, so a line
  break (header injection), a second recipient or a display name never reaches the server (``failed``).
- ``Message-ID`` is derived from the ``alert_id`` and the ``Date`` is the trigger's time, so a resend of a
  trigger (a reply lost after the server took the message) is the same message, which mail clients and
  the receiver's own tooling (``X-Legend-Alert-Id``) recognise.
- What the server answers decides the outcome: 4xx replies, timeouts, refused or dropped connections and
  TLS failures may pass (``retry``); a 5xx reply (an unknown mailbox, a refused sender) is final
  (``failed``). STARTTLS, when configured, is required: the message is never sent in the clear instead.
- A connection per message: triggers are rare, an idle pooled connection would be dropped by the server
  anyway, and each attempt stays independent (bounded by ``timeout`` as a whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import socket
import ssl
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import quote

import aiosmtplib
import msgspec

from legend.domain.notifications import AlertPayload, Channel, Destination, EmailAddress, Outcome, SendResult
from legend.domain.timefmt import iso

MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
MAX_LOCAL_PART_LENGTH = 64
QUIT_SECONDS = 2.0  # the polite QUIT after a delivered message; its failure changes nothing

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})*)", re.ASCII)
_NAME_AND_ADDRESS = re.compile(r"(?P<name>[^<>\"\\]*?)\s*<(?P<address>[^<>]*)>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot receive alerts (None: it can): one ASCII ``local@domain`` (dot-atom local
    part, a host name as domain), no display name, quoting, comment, control character or second address."""
    if _CONTROL.search(address):
        return "the e-mail address contains a line break or another control character"
    if len(address) > MAX_ADDRESS_LENGTH:
        return f"the e-mail address is longer than {MAX_ADDRESS_LENGTH} characters"
    match = _ADDRESS.fullmatch(address)
    if match is None:
        return f"{address!r} is not an e-mail address (one ASCII local@domain, e.g. trader@example.com)"
    if len(match["local"]) > MAX_LOCAL_PART_LENGTH:
        return f"the part before the @ is longer than {MAX_LOCAL_PART_LENGTH} characters"
    return None


def sender_mailbox(from_address: str) -> tuple[str, str]:
    """``(display name, address)`` of a ``from_address``: ``alerts@example.com`` or
    ``Legend Alerts <alerts@example.com>``; ValueError with the reason when it is neither."""
    match = _NAME_AND_ADDRESS.fullmatch(from_address.strip())
    name, address = (match["name"], match["address"]) if match else ("", from_address.strip())
    problem = "the name contains a control character" if _CONTROL.search(name) else address_problem(address)
    if problem is not None:
        raise ValueError(f"from_address {from_address!r}: {problem}")
    return name, address


class SmtpConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The relay alerts are sent through (``[notifications.smtp]``). ``starttls``: upgrade a plain
    connection (port 587), required when set; ``tls``: TLS from the first byte (port 465); neither: plain
    (a relay on the local network). ``ca_file``: PEM certificates to trust instead of the system's (a
    relay with a private CA). ``from_address``: ``alerts@example.com`` or ``Name <alerts@example.com>``."""

    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: str | None = None
    from_address: str
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if not self.host or _CONTROL.search(self.host) or any(c.isspace() for c in self.host):
            raise ValueError(f"host {self.host!r} is not a host name")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not between 1 and 65535")
        if self.starttls and self.tls:
            raise ValueError(
                "starttls and tls exclude each other: starttls upgrades a plain connection (port 587), "
                "tls is TLS from the start (port 465)"
            )
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        sender_mailbox(self.from_address)

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        password = None if self.password is None else "***"
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, starttls={self.starttls}, tls={self.tls}, "
            f"username={self.username!r}, password={password!r}, from_address={self.from_address!r}, "
            f"ca_file={self.ca_file!r})"
        )


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context that verifies the relay's certificate and name, against ``ca_file`` if given."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {ca_file!r} cannot be read as PEM certificates: {exc}") from None


def message_id(alert_id: str, domain: str) -> str:
    """``<alert-12%3A3@example.com>``: the same for every send of a trigger; the ``alert_id`` quoted to
    the characters a Message-ID allows."""
    return f"<alert-{quote(alert_id, safe='').replace('.', '%2E')}@{domain}>"


def subject(payload: AlertPayload) -> str:
    """``AAPL: breakout alert`` on one line whatever the ticker holds."""
    text = f"{payload.ticker}: {payload.alert_type.replace('_', ' ')} alert"
    return " ".join(_CONTROL.sub(" ", text).split())


def _facts(payload: AlertPayload) -> list[tuple[str, str]]:
    return [
        ("Ticker", payload.ticker),
        ("Alert", payload.alert_type.replace("_", " ")),
        ("Price now", f"${payload.current_price:,.2f}"),
        ("Price at the trigger", f"${payload.trigger_price:,.2f}"),
        ("Level", f"{payload.threshold:,.2f}"),
        ("Value", f"{payload.value:,.2f}"),
        ("Time", iso(payload.triggered_at)),
        ("Alert id", payload.alert_id),
    ]


def text_body(payload: AlertPayload) -> str:
    rows = "\n".join(f"{name}: {value}" for name, value in _facts(payload))
    return f"{payload.message}\n\n{rows}\n\n-- \nSent by Legend Realtime for an alert rule of yours.\n"


def html_body(payload: AlertPayload) -> str:
    """The HTML part; every value is escaped (a ticker or message is text, never markup)."""

    def e(text: str) -> str:
        return html.escape(text, quote=True).replace("\n", "<br>\n")

    rows = "\n".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(name)}</th><td>{e(value)}</td></tr>'
        for name, value in _facts(payload)
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
        f'{e(subject(payload))}</title></head>\n<body style="font-family:sans-serif">\n'
        f'<p style="font-size:16px"><strong>{e(payload.message)}</strong></p>\n'
        f"<table>\n{rows}\n</table>\n"
        '<p style="color:#666;font-size:12px">Sent by Legend Realtime for an alert rule of yours.</p>\n'
        "</body></html>\n"
    )


def _failed(error: str, status: int | None = None) -> SendResult:
    return SendResult(outcome=Outcome.FAILED, error=error, status=status)


def _retry(error: str, status: int | None = None) -> SendResult:
    return SendResult(outcome=Outcome.RETRY, error=error, status=status)


def _reply(code: int, text: str) -> SendResult:
    """A refusal by the server: 5xx is final, anything else (4xx: try later) may pass."""
    error = f"the mail server answered {code} {text}".strip()
    return _failed(error, code) if 500 <= code < 600 else _retry(error, code)


class EmailSender:
    """The Sender of the ``email`` channel (see the module's docstring). Never raises for what the
    server, the network or the address did."""

    channel: Channel = "email"

    def __init__(self, config: SmtpConfig, timeout: float = 10.0) -> None:
        self._config = config
        self._timeout = timeout
        self._from_name, self._from_address = sender_mailbox(config.from_address)
        self._tls = tls_context(config.ca_file) if config.tls or config.starttls else None
        self._local_hostname: str | None = None

    def message(self, to: str, payload: AlertPayload) -> EmailMessage:
        """The message for one trigger; ValueError if a header cannot hold what it must."""
        message = EmailMessage(policy=SMTP)
        username, domain = self._from_address.rsplit("@", 1)
        message["From"] = Address(display_name=self._from_name, username=username, domain=domain)
        message["To"] = to
        message["Subject"] = subject(payload)
        message["Date"] = format_datetime(payload.triggered_at.astimezone(UTC))
        message["Message-ID"] = message_id(payload.alert_id, domain)
        message["X-Legend-Alert-Id"] = payload.alert_id
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
        message.set_content(text_body(payload))
        message.add_alternative(html_body(payload), subtype="html")
        return message

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult:
        if not isinstance(destination, EmailAddress):
            return _failed(f"the email channel cannot send to a {type(destination).__name__}")
        problem = address_problem(destination.address)
        if problem is not None:
            return _failed(problem)
        try:
            message = self.message(destination.address, payload)
        except ValueError as exc:
            return _failed(f"alert {payload.alert_id!r} cannot be put in an e-mail: {exc}")
        try:
            await self._deliver(message, destination.address)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            return _reply(refusal.code, refusal.message)
        except aiosmtplib.SMTPResponseException as exc:
            return _reply(exc.code, exc.message)
        except TimeoutError:
            return _retry(f"the mail server did not answer within {self._timeout:g} s")
        except ssl.SSLError as exc:  # before OSError: a certificate the context does not trust
            return _retry(f"TLS with the mail server failed: {exc}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _retry(f"cannot reach the mail server {self._config.host}:{self._config.port}: {exc}")
        return SendResult(outcome=Outcome.DELIVERED)

    async def _deliver(self, message: EmailMessage, to: str) -> None:
        config = self._config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            timeout=self._timeout,
            use_tls=config.tls,
            start_tls=config.starttls,  # True: required (no fallback to plain text); False: never
            tls_context=self._tls,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await smtp.connect(local_hostname=await self._hostname())
                await smtp.send_message(message, sender=self._from_address, recipients=[to])
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(QUIT_SECONDS):
                    await smtp.quit()
        finally:
            smtp.close()

    async def _hostname(self) -> str:
        """The name given in EHLO: this host's FQDN, looked up once (off the loop: it may ask DNS)."""
        if self._local_hostname is None:
            name = await asyncio.to_thread(socket.getfqdn)
            self._local_hostname = name if name and not re.search(r"[\s\x00-\x1f\x7f]", name) else "localhost"
        return self._local_hostname

    async def close(self) -> None:
        """Nothing to release: each message has a connection of its own, closed after it."""
