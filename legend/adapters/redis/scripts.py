"""The Lua scripts of the Redis backplane, read once from the package's ``.lua`` files.

Each runs by EVALSHA; Redis learns a script from its first EVAL (or SCRIPT LOAD) and forgets it on a
restart or a failover, so a NoScriptError sends it again once. redis-py's ``register_script`` does the
same for single calls, but in a pipeline it asks ``SCRIPT EXISTS`` before every execute: one more round
trip per batch of publishes, which this class avoids.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class Script:
    """One Lua script, run by EVALSHA."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    @classmethod
    def load(cls, name: str) -> Script:
        """The script in ``<name>.lua`` beside this module (also inside an installed wheel)."""
        return cls(name, files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8"))

    async def __call__(self, redis: Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)  # caches it again

    async def pipelined(
        self, redis: Redis, calls: list[tuple[list[str], list[Any]]], wait: tuple[int, int] | None = None
    ) -> tuple[list[Any], int | None]:
        """Several runs in one pipeline, in order, and with ``wait`` (replicas, ms) a ``WAIT`` after them
        on the same connection: the results, and how many replicas acknowledged the writes in time. The
        script is loaded first if Redis forgot it (a restart, a new primary: every call of the pipeline
        then failed, so none of them ran)."""
        for attempt in range(2):
            pipe = redis.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            if wait is not None:
                pipe.execute_command("WAIT", *wait)
            outcomes: list[Any] = await pipe.execute(raise_on_error=False)
            if not attempt and any(isinstance(outcome, NoScriptError) for outcome in outcomes):
                await redis.script_load(self.source)
                continue
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
            if wait is None:
                return outcomes, None
            return outcomes[:-1], int(outcomes[-1])
        raise AssertionError("unreachable")


# Read when the package is imported, shared by every instance in the process.
PUBLISH = Script.load("publish")  # sequence, store, log, journal and PUBLISH one message
HEARTBEAT = Script.load("heartbeat")  # this instance's registration, interest and figures
MEMBERS = Script.load("members")  # the live instances' interest or figures
LEASE = Script.load("lease")  # take or renew a lease
RELEASE = Script.load("release")  # give a held lease up
LEAVE = Script.load("leave")  # hand back leases and leave the registry
ADMIT = Script.load("admit")  # register a connection within its user's and address's limits
REFRESH = Script.load("refresh")  # keep this instance's connections registered
POSITION = Script.load("position")  # move a shared position (the replay's) on
TAKE_RECONNECT = Script.load("take_reconnect")  # spend one reconnect a draining instance announced
