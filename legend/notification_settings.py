"""The ``[notifications]`` section of the settings: where alert triggers may go besides the WebSocket
(docs/alerts.md, "Where alerts go"). Its own module beside ``legend.settings``, which is long enough."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class SmtpSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[notifications.smtp]``: the relay e-mail alerts go through; no ``host``: no e-mail."""

    host: str = ""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    starttls: bool = True  # upgrade a plain connection (587), required when set
    tls: bool = False  # TLS from the first byte (465)
    username: str = ""
    password: str = ""
    from_address: str = ""  # "alerts@example.com" or "Legend <alerts@example.com>"
    ca_file: str = ""  # PEM certificates to trust instead of the system's (a relay with a private CA)

    def __post_init__(self) -> None:
        if self.host and not self.from_address:
            raise ValueError("from_address is required with a host")


class PushSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[notifications.push]``: the VAPID identity of Web Push (RFC 8292). Without ``private_key`` the first
    instance makes a key pair and keeps it in the database, shared by every instance."""

    private_key: str = ""  # PEM, or the raw P-256 key in base64url (what web-push tools print)
    subject: str = "mailto:alerts@example.com"  # a contact push services may use: mailto: or https:

    def __post_init__(self) -> None:
        if not self.subject.startswith(("mailto:", "https://")):
            raise ValueError(f"subject: a mailto: or https: URL, not {self.subject!r}")


class NotificationSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Alert delivery: whether it runs, and where webhooks may go. A webhook whose address is loopback,
    private, link-local or multicast is refused (server-side request forgery) unless it lies in one of
    ``allow_networks``; ``http://`` only with ``allow_http``."""

    enabled: bool = True
    allow_networks: list[str] = msgspec.field(default_factory=list)  # CIDR, e.g. "10.1.2.0/24"
    allow_http: bool = False
    interval: PositiveFloat = 1.0  # seconds between delivery rounds when nothing is due
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    push: PushSettings = msgspec.field(default_factory=PushSettings)

    def __post_init__(self) -> None:
        for network in self.allow_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"allow_networks: {network!r} is not a network (CIDR, e.g. 10.0.0.0/8)"
                ) from None
