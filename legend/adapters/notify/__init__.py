"""Senders of alert notifications behind the Sender port, and the guard against server-side request
forgery that every outgoing destination passes (at registration and at each send)."""

from legend.adapters.notify.guard import DestinationRefused, check_url, resolve_checked
from legend.adapters.notify.webhook import WebhookSender

__all__ = ["DestinationRefused", "WebhookSender", "check_url", "resolve_checked"]
