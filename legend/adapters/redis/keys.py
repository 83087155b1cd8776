"""Every Redis key and pub/sub channel the backplane uses, named in one place (docs/scaling.md lists them)."""

from __future__ import annotations


class Keys:
    """The names of one deployment (``redis.key_prefix``, ``redis.channel_prefix``) for one instance."""

    def __init__(self, key_prefix: str, channel_prefix: str, instance_id: str) -> None:
        self.prefix = key_prefix
        self.channel_prefix = channel_prefix
        self.price_log = f"{key_prefix}price-log"  # a Redis stream of every price published
        self.registry = f"{key_prefix}instances"  # live instances, scored by when they expire
        self.interest = f"{key_prefix}interest:{instance_id}"
        self.figures = f"{key_prefix}figures:{instance_id}"
        self.topics = f"{key_prefix}topics"  # every topic any instance published on
        self.control = f"{key_prefix}topics"  # the pub/sub channel announcing a new topic
        self.journal = f"{key_prefix}journal"  # (stream, seq) of every publish, for recovery
        # every must-deliver message for a while (recovery beyond history), and the bound below which
        # every id trimmed from it lies
        self.archive = f"{key_prefix}archive"
        self.archive_trimmed = f"{key_prefix}archive:trimmed"
        self.epoch = f"{key_prefix}epoch"  # a random token: changes only when Redis lost its data

    def topic(self, topic: str) -> str:
        """The pub/sub channel of a topic."""
        return f"{self.channel_prefix}{topic}"

    def unprefixed(self, channel: str) -> str:
        """The topic of a pub/sub channel."""
        prefix = self.channel_prefix
        return channel[len(prefix) :] if channel.startswith(prefix) else channel

    def stream(self, stream: str) -> tuple[str, str]:
        """A stream's seq and history keys. The hash tag keeps both in one slot, should the layout ever
        move to a cluster."""
        return f"{self.prefix}{{{stream}}}:seq", f"{self.prefix}{{{stream}}}:history"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def fence(self, name: str) -> str:
        """A lease's fencing token: a counter raised on every new holding, checked by fenced publishes."""
        return f"{self.prefix}lease:{name}:fence"

    def position(self, name: str) -> str:
        """A shared position (where the replay provider stands): "position:saved-at"."""
        return f"{self.prefix}position:{name}"

    def once(self, key: str) -> str:
        """The guard of a publish with ``once``."""
        return f"{self.prefix}once:{key}"

    def external(self, digest: str) -> str:
        """The guard of an external message: it was sequenced already."""
        return f"{self.prefix}external:{digest}"

    def connections(self, user_id: str, address: str) -> tuple[str, str]:
        """The connection sets of a user and of a client address."""
        return f"{self.prefix}conn:user:{user_id}", f"{self.prefix}conn:address:{address}"

    def reconnects(self, address: str) -> str:
        """How many drained connections of a client address may still come back (a counter that expires)."""
        return f"{self.prefix}conn:drained:{address}"
