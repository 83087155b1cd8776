"""What a quote provider raises from ``fetch``: the quote poller counts it, backs off and shows the message to
admins in ``/api/ws/stats`` (``streamer.last_error``), so every message names the provider and the cause."""

from __future__ import annotations


class ProviderError(Exception):
    """A fetch failed; ``provider`` is the provider's ``name``."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.detail = message


class ProviderAuthError(ProviderError):
    """The vendor refused the API key (HTTP 401 or 403)."""


class ProviderRateLimited(ProviderError):
    """The vendor said "too many requests" and nothing could be fetched within the fetch budget."""

    def __init__(self, provider: str, message: str, retry_after: float) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The vendor did not answer usefully: timeout, connection refused, HTTP 5xx, a body that is not JSON."""


class ReplayDataError(ProviderError):
    """A replay file cannot be read; the message names the file and, when it is about one row, its line."""

    def __init__(self, message: str) -> None:
        super().__init__("replay", message)
