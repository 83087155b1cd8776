"""What a plugin registers, taken and checked: the ``register`` callbacks' arguments, and the rules a
plugin's channels and feeds must follow (a plugin whose registrations break them is failed, and nothing it
registered in that hook is kept)."""

from __future__ import annotations

from typing import Any

from legend.domain.channels import ChannelRegistry, ChannelSpec, check_schema
from legend.plugins.calls import is_async_callable


# What one call of each register hook's ``register`` callback registers.
def channel_arg(spec: Any) -> Any:
    return spec


def provider_arg(name: Any, factory: Any) -> tuple[Any, Any]:
    return name, factory


def route_args(*handlers: Any) -> tuple[Any, ...]:
    return handlers


def feed_args(name: Any, feed: Any, *, every_instance: bool = False) -> tuple[Any, Any, bool]:
    return name, feed, every_instance


def channels_problem(specs: list[Any], registry: ChannelRegistry) -> str | None:
    """What is wrong with the channels one plugin registered (all are kept, or none), or None."""
    taken = set(registry.names())
    for spec in specs:
        if not isinstance(spec, ChannelSpec):
            return f"register() takes a ChannelSpec, not {spec!r}"
        if spec.name in taken:
            return f"channel {spec.name!r} is registered already"
        if not spec.name or ":" in spec.name:
            return f"invalid channel name {spec.name!r}"
        if spec.schema is None:
            return f"channel {spec.name!r} needs a schema (the msgspec Struct of its messages)"
        if spec.authorize is not None and (not callable(spec.authorize) or is_async_callable(spec.authorize)):
            return (
                f"channel {spec.name!r}: authorize must be a plain function (user_id, key) -> bool; the "
                "server asks it inside the subscribe and cannot await it"
            )
        try:
            check_schema(spec.schema)
        except ValueError as exc:
            return f"channel {spec.name!r}: {exc}"
        taken.add(spec.name)
    return None


def feeds_problem(feeds: list[tuple[Any, Any, bool]]) -> str | None:
    """What is wrong with the feeds one plugin registered (all are kept, or none), or None."""
    names = [name for name, _, _ in feeds]
    return next(
        (f"feed {name!r} is registered twice" for name in names if names.count(name) > 1), None
    ) or next((f"feed {name!r} is not callable" for name, feed, _ in feeds if not callable(feed)), None)
