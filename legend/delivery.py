"""Alert delivery wired from the settings (part of the composition root, ``legend.bootstrap``): the senders
of the channels the server can use and the service that runs them.

Webhooks always (with the forgery guard of ``[notifications]``); Web Push with the VAPID key of
``[notifications.push]``, or the one the first instance made and keeps in the database (``start``);
e-mail when ``[notifications.smtp]`` names a relay.
"""

from __future__ import annotations

import logging

from legend.adapters.notify.email import EmailSender, SmtpConfig
from legend.adapters.notify.push import PushSender, VapidKeys, load_vapid_keys, make_vapid_keys
from legend.adapters.notify.webhook import WebhookSender
from legend.adapters.sql.database import Database
from legend.adapters.sql.notifications import SqlAlchemyNotificationRepository
from legend.domain.notifications import Channel
from legend.notification_settings import NotificationSettings
from legend.ports.clock import Clock
from legend.ports.notifications import Sender
from legend.runtime.supervisor import Supervised, TaskSupervisor
from legend.services.notifications.service import NotificationService

log = logging.getLogger("legend.notifications")

VAPID_KEY = "vapid_private_key"  # its name in server_keys


def smtp_config(settings: NotificationSettings) -> SmtpConfig | None:
    smtp = settings.smtp
    if not smtp.host:
        return None
    return SmtpConfig(
        host=smtp.host,
        port=smtp.port,
        starttls=smtp.starttls,
        tls=smtp.tls,
        username=smtp.username or None,
        password=smtp.password or None,
        from_address=smtp.from_address,
        ca_file=smtp.ca_file or None,
    )


class AlertDelivery:
    """The delivery service with its senders; ``start`` settles the VAPID keys and adds Web Push."""

    def __init__(
        self, settings: NotificationSettings, database: Database, clock: Clock, instance_id: str
    ) -> None:
        self.settings = settings
        self.repository = SqlAlchemyNotificationRepository(database)
        senders: dict[Channel, Sender] = {
            "webhook": WebhookSender(settings.allow_networks, settings.allow_http)
        }
        config = smtp_config(settings)
        if config is not None:
            senders["email"] = EmailSender(config)
        self.service = NotificationService(
            self.repository, senders, clock, instance_id=instance_id, interval=settings.interval
        )
        self.clock = clock
        self.keys: VapidKeys | None = None
        self._loop: Supervised | None = None

    async def start(self, supervisor: TaskSupervisor) -> None:
        """The VAPID keys (from the settings, else the database's: made by the first instance to start),
        then the delivery loop."""
        configured = self.settings.push.private_key
        if configured:
            self.keys = load_vapid_keys(configured)
        else:
            made = make_vapid_keys().private_pem()
            self.keys = load_vapid_keys(await self.repository.key(VAPID_KEY, made, self.clock.now()))
        self.service.senders["push"] = PushSender(self.keys, self.settings.push.subject)
        self._loop = supervisor.start("notification-delivery", self.service.run)

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()
            self._loop = None
        await self.service.close()

    @property
    def public_key(self) -> str | None:
        """The VAPID public key browsers subscribe with (base64url of the 65-byte point); None before start."""
        return None if self.keys is None else self.keys.public_key
