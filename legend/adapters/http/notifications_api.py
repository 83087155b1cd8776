"""REST endpoints over the caller's notification destinations (docs/alerts.md, "Where alerts go"): webhooks,
Web Push subscriptions and e-mail addresses, each registered, listed, tested and removed by its owner
only (another user's is answered 404). Destinations the server must not send to (a webhook on a private
address, ``http://`` unless allowed) are refused with a 400 naming the field and the reason.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import invalid
from legend.adapters.http.user_api import FIELD_ERRORS, MAX_ID, USER_DEPENDENCIES, USER_SECURITY
from legend.adapters.notify.email import address_problem
from legend.adapters.notify.guard import DestinationRefused, check_url
from legend.delivery import AlertDelivery
from legend.domain.notifications import Channel, Destination, EmailAddress, PushSubscription, Webhook
from legend.domain.timefmt import iso

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A URL that receives a signed POST per trigger; ``secret`` (16 to 200 characters) signs it."""

    url: Url
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=200)]


class PushKeys(msgspec.Struct, forbid_unknown_fields=True):
    p256dh: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    auth: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class PushCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The browser's PushSubscription JSON (``subscription.toJSON()``)."""

    endpoint: Url
    keys: PushKeys
    expirationTime: float | None = None


class EmailCreate(msgspec.Struct, forbid_unknown_fields=True):
    address: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]


class DestinationView(msgspec.Struct, kw_only=True):
    """One destination (a webhook's secret is never shown again)."""

    id: int
    channel: Channel
    url: str | None = None  # webhook
    endpoint: str | None = None  # push
    address: str | None = None  # email
    created_at: str


class Destinations(msgspec.Struct):
    """The caller's destinations per channel, and the channels this server can send on."""

    webhooks: list[DestinationView]
    push: list[DestinationView]
    email: list[DestinationView]
    channels: list[Channel]


class PublicKey(msgspec.Struct):
    """The VAPID public key a browser subscribes with (``applicationServerKey``): base64url, 65 bytes."""

    public_key: str


class TestResult(msgspec.Struct):
    """What a test message to the destination came to."""

    outcome: Literal["delivered", "retry", "failed", "removed"]
    error: str | None
    status: int | None


def _view(destination: Destination) -> DestinationView:
    common = {"id": destination.id, "created_at": iso(destination.created_at)}
    if isinstance(destination, Webhook):
        return DestinationView(channel="webhook", url=destination.url, **common)  # type: ignore[arg-type]
    if isinstance(destination, PushSubscription):
        return DestinationView(channel="push", endpoint=destination.endpoint, **common)  # type: ignore[arg-type]
    assert isinstance(destination, EmailAddress)
    return DestinationView(channel="email", address=destination.address, **common)  # type: ignore[arg-type]


def _available(notifications: AlertDelivery | None) -> AlertDelivery:
    if notifications is None:
        raise ServiceUnavailableException(
            detail="alert delivery needs a database and [notifications] enabled = true"
        )
    return notifications


def _checked(notifications: AlertDelivery, field: str, url: str) -> None:
    settings = notifications.settings
    try:
        check_url(url, settings.allow_http, settings.allow_networks)
    except DestinationRefused as exc:
        raise invalid((field, f"refused: {exc.reason}")) from None


class NotificationController(Controller):
    """The caller's notification destinations."""

    path = "/api/notifications"
    tags = ["notifications"]
    security = USER_SECURITY
    dependencies = USER_DEPENDENCIES
    exception_handlers = FIELD_ERRORS

    @get("/", summary="The caller's notification destinations")
    async def list_destinations(
        self, notifications: Service[AlertDelivery | None], user_id: NamedDependency[str]
    ) -> Destinations:
        delivery = _available(notifications)
        views = [_view(d) for d in await delivery.repository.destinations(user_id)]
        return Destinations(
            webhooks=[v for v in views if v.channel == "webhook"],
            push=[v for v in views if v.channel == "push"],
            email=[v for v in views if v.channel == "email"],
            channels=sorted(delivery.service.senders),
        )

    @post("/webhooks", summary="Register a webhook", status_code=HTTP_201_CREATED)
    async def add_webhook(
        self,
        data: JSONBody[WebhookCreate],
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
    ) -> DestinationView:
        """A URL (https; not a private, loopback or link-local address) and the secret that signs its POSTs."""
        delivery = _available(notifications)
        _checked(delivery, "url", data.url)
        fields = {"url": data.url, "secret": data.secret}
        return _view(await delivery.repository.add("webhook", user_id, fields, delivery.clock.now()))

    @get("/push/key", summary="The Web Push (VAPID) public key")
    async def push_key(self, notifications: Service[AlertDelivery | None]) -> PublicKey:
        key = _available(notifications).public_key
        if key is None:
            raise ServiceUnavailableException(detail="the server is starting: try again")
        return PublicKey(key)

    @post("/push", summary="Register a Web Push subscription", status_code=HTTP_201_CREATED)
    async def add_push(
        self,
        data: JSONBody[PushCreate],
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
    ) -> DestinationView:
        """The browser's PushSubscription JSON; the same endpoint again is the same subscription."""
        delivery = _available(notifications)
        if not data.endpoint.startswith("https://"):
            raise invalid(("endpoint", "a push service's endpoint is an https:// URL"))
        _checked(delivery, "endpoint", data.endpoint)
        fields = {"endpoint": data.endpoint, "p256dh": data.keys.p256dh, "auth": data.keys.auth}
        return _view(await delivery.repository.add("push", user_id, fields, delivery.clock.now()))

    @post("/email", summary="Register an e-mail address", status_code=HTTP_201_CREATED)
    async def add_email(
        self,
        data: JSONBody[EmailCreate],
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
    ) -> DestinationView:
        delivery = _available(notifications)
        problem = address_problem(data.address)
        if problem is not None:
            raise invalid(("address", problem))
        return _view(
            await delivery.repository.add("email", user_id, {"address": data.address}, delivery.clock.now())
        )

    @delete(
        "/{channel:str}/{destination_id:int}", summary="Remove a destination", status_code=HTTP_204_NO_CONTENT
    )
    async def remove(
        self,
        channel: FromPath[str],
        destination_id: FromPath[int],
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
    ) -> None:
        """Remove one of the caller's destinations (``webhooks``, ``push`` or ``email``); its pending
        deliveries end ``removed``."""
        delivery = _available(notifications)
        kind = _channel(channel)
        if not (
            0 < destination_id <= MAX_ID and await delivery.repository.remove(kind, user_id, destination_id)
        ):
            raise NotFoundException(detail=f"no {kind} destination {destination_id}")

    @post("/{channel:str}/{destination_id:int}/test", summary="Send a test message", status_code=HTTP_200_OK)
    async def test(
        self,
        channel: FromPath[str],
        destination_id: FromPath[int],
        notifications: Service[AlertDelivery | None],
        user_id: NamedDependency[str],
    ) -> TestResult:
        """Send a test message to one of the caller's destinations now, once (not queued, not retried)."""
        delivery = _available(notifications)
        kind = _channel(channel)
        found = (
            await delivery.repository.destination(kind, user_id, destination_id)
            if 0 < destination_id <= MAX_ID
            else None
        )
        if found is None:
            raise NotFoundException(detail=f"no {kind} destination {destination_id}")
        result = await delivery.service.test(found)
        return TestResult(result.outcome.value, result.error, result.status)


_PATHS: dict[str, Channel] = {"webhooks": "webhook", "push": "push", "email": "email"}


def _channel(path: str) -> Channel:
    channel = _PATHS.get(path)
    if channel is None:
        raise NotFoundException(detail=f"no destinations called {path!r}: webhooks, push or email")
    return channel
