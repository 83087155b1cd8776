"""What ``LegendWebSocketProtocol`` (legend/adapters/http/websocket_protocol.py) relies on in uvicorn's
private ``WebSocketsSansIOProtocol``: every attribute and method it reads, replaces or overrides, checked
against the installed uvicorn, so that an upgrade that changes one fails here, naming it, instead of
quietly changing behaviour (uvicorn 0.55's ``__init__`` setting ``close_timeout = 10.0`` on the instance
hid the configured value for as long as nobody timed a close).

The lists are derived from the subclass's source: a name it starts using must be added to one of them
(``test_every_name_the_subclass_uses_is_listed`` fails until it is)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import NoneType

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets import websockets_sansio_impl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.server import ServerProtocol

from legend.adapters.http import websocket_protocol
from legend.adapters.http.websocket_protocol import (
    UVICORN_ATTRIBUTES,
    LegendWebSocketProtocol,
    _Flag,
    _Inbox,
    protocol_class,
)

SUBCLASS = Path(websocket_protocol.__file__)
WHERE = "legend/adapters/http/websocket_protocol.py"

# Set by uvicorn's __init__, with the type of the value it sets there. queue and writable are replaced by
# _Inbox and _Flag; close_timeout is overwritten after __init__ (uvicorn sets its own there).
INIT_STATE: dict[str, type] = {
    "config": Config,  # read for ws_per_message_deflate: whether to offer the extension at all
    "loop": asyncio.AbstractEventLoop,
    "conn": ServerProtocol,  # its available_extensions replaced by ours when deflate is on
    "queue": asyncio.Queue,
    "writable": asyncio.Event,
    "transport": NoneType,
    "client": NoneType,
    "close_sent": bool,
    "disconnected": bool,
    "handshake_complete": bool,
    "read_paused": bool,
    "close_timeout": float,
    "close_timer": NoneType,
    "initial_response": NoneType,
    "frames": list,
    "curr_msg_data_type": str,
}
# Set later by uvicorn, by the method named.
SET_LATER: dict[str, str] = {
    "transport": "connection_made",
    "client": "connection_made",
    "scope": "handle_connect",  # read by handle_connect's override, once uvicorn's has set it
    "request": "handle_connect",  # let go of after the handshake (send's override)
    "response": "handle_connect",
}
# uvicorn's methods the subclass overrides or calls, with their parameters (self left out).
METHODS: dict[str, tuple[str, ...]] = {
    "__init__": ("config", "server_state", "app_state", "_loop"),
    "connection_made": ("transport",),
    "connection_lost": ("exc",),
    "handle_connect": ("event",),
    "handle_ping": (),  # replaced wholesale: see test_handle_ping_is_still_what_the_override_replaces
    "send": ("message",),
    "send_receive_event_to_app": (),
    "handle_parser_exception": (),
    "shutdown": (),  # replaced for a handshake not yet answered (503, not 500); else called
    "stop_keepalive": (),
    # extended (super() first): they must keep driving ``writable``, which write_text and _ready read
    "pause_writing": (),
    "resume_writing": (),
}
# The subclass's own names: none of them may exist in uvicorn's class (they would override it unawares).
OWN = {
    "configured_close_timeout",
    "send_buffer",
    "deflate_min_bytes",
    "deflate_mode",
    "write_text",
    "_write_own_deflate",
    "send_text",
    "close_and_wait",
    "close_now",
    "abort",
    "_lost",
    "_ready",
    "fast_writer",
}


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


def _self_attributes(node: ast.AST) -> Iterator[tuple[str, ast.expr_context]]:
    """``self.x`` in ``node`` (and ``getattr(self, "x", …)``), with whether each is read or set."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
            yield sub.attr, sub.ctx
        elif (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "getattr"
            and isinstance(sub.args[0], ast.Name)
            and sub.args[0].id == "self"
            and isinstance(sub.args[1], ast.Constant)
        ):
            yield str(sub.args[1].value), ast.Load()


def _uvicorn_methods() -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(inspect.getsource(websockets_sansio_impl))
    return {
        node.name: node
        for node in _class(tree, "WebSocketsSansIOProtocol").body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _changed(what: str) -> str:
    return f"uvicorn changed: {what}. {WHERE} relies on it: adapt the subclass, then this contract."


@pytest.fixture
async def uvicorn_instance() -> WebSocketsSansIOProtocol:
    """A real instance of uvicorn's class, as uvicorn makes one for a connection."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    return WebSocketsSansIOProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())


def test_every_name_the_subclass_uses_is_listed() -> None:
    cls = _class(ast.parse(SUBCLASS.read_text(encoding="utf-8")), "LegendWebSocketProtocol")
    used = {name for name, _ in _self_attributes(cls)}
    used |= {node.name for node in cls.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    used |= {
        t.id
        for node in cls.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    unlisted = used - OWN - set(INIT_STATE) - set(SET_LATER) - set(METHODS) - {"__slots__"}
    assert not unlisted, (
        f"{WHERE} now uses {sorted(unlisted)}: list each in tests/unit/test_uvicorn_contract.py, in OWN "
        "if it is the subclass's own, else with what uvicorn makes of it"
    )


async def test_uvicorn_init_still_sets_each_attribute_with_its_kind(
    uvicorn_instance: WebSocketsSansIOProtocol,
) -> None:
    state = vars(uvicorn_instance)
    for name, kind in INIT_STATE.items():
        assert name in state, _changed(f"__init__ no longer sets self.{name}")
        value = state[name]
        assert isinstance(value, kind), _changed(
            f"__init__ sets self.{name} to a {type(value).__name__}, not a {kind.__name__}"
        )


def test_uvicorn_still_sets_the_later_attributes_where_expected() -> None:
    methods = _uvicorn_methods()
    for name, setter in SET_LATER.items():
        assert setter in methods, _changed(f"{setter} is gone")
        stores = {attr for attr, ctx in _self_attributes(methods[setter]) if isinstance(ctx, ast.Store)}
        assert name in stores, _changed(f"{setter} no longer sets self.{name}")


def test_uvicorn_methods_keep_their_names_and_parameters() -> None:
    for name, parameters in METHODS.items():
        method = getattr(WebSocketsSansIOProtocol, name, None)
        assert callable(method), _changed(f"{name} is gone")
        found = tuple(inspect.signature(method).parameters)[1:]
        assert found == parameters, _changed(f"{name} takes {found}, not {parameters}")
    methods = _uvicorn_methods()
    for name, flag_call in (("pause_writing", "clear"), ("resume_writing", "set")):
        assert f"self.writable.{flag_call}()" in ast.unparse(methods[name]), _changed(
            f"{name} no longer calls self.writable.{flag_call}()"
        )


async def test_none_of_the_subclass_own_names_is_uvicorns(uvicorn_instance: WebSocketsSansIOProtocol) -> None:
    clashes = {
        name for name in OWN if hasattr(WebSocketsSansIOProtocol, name) or name in vars(uvicorn_instance)
    }
    assert not clashes, _changed(f"it now has {sorted(clashes)}, which the subclass defines for itself")


def test_inbox_and_flag_provide_everything_uvicorn_calls_on_queue_and_writable() -> None:
    tree = ast.parse(inspect.getsource(websockets_sansio_impl))
    for attribute, replacement in (("queue", _Inbox), ("writable", _Flag)):
        called = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == attribute
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        }
        missing = {name for name in called if not hasattr(replacement, name)}
        assert not missing, _changed(
            f"it calls self.{attribute}.{sorted(missing)}, which {replacement.__name__} lacks"
        )


def test_request_and_response_are_read_only_up_to_the_handshake() -> None:
    """The subclass drops them once the handshake is done: only handle_connect and send (the accept)
    may use them."""
    readers = {
        name
        for name, method in _uvicorn_methods().items()
        if {"request", "response"} & {attr for attr, _ in _self_attributes(method)}
    }
    assert readers <= {"handle_connect", "send"}, _changed(f"{sorted(readers)} use self.request/response")


def test_handle_ping_is_still_what_the_override_replaces() -> None:
    """The override writes uvicorn's pong unless the buffer is over its high-water mark; anything new in
    uvicorn's handle_ping would be lost."""
    body = ast.unparse(_uvicorn_methods()["handle_ping"])
    expected = textwrap.dedent(
        """\
        def handle_ping(self) -> None:
            output = self.conn.data_to_send()
            self.transport.write(b''.join(output))"""
    )
    assert body == expected, _changed(f"handle_ping is now:\n{body}")


async def test_the_configured_close_timeout_and_send_buffer_survive_init() -> None:
    """uvicorn's __init__ sets close_timeout = 10.0 on the instance: the configured value must win."""

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws="websockets-sansio", log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(0.5, 123456)(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    assert protocol.close_timeout == 0.5
    assert protocol.send_buffer == 123456
    assert isinstance(protocol, LegendWebSocketProtocol)


def test_the_slots_are_every_attribute_uvicorn_sets() -> None:
    """A name uvicorn starts setting would go to a per-connection dict again (about 1.5 KB each)."""
    stores = {
        attr
        for method in _uvicorn_methods().values()
        for attr, ctx in _self_attributes(method)
        if isinstance(ctx, ast.Store)
    }
    assert stores == set(UVICORN_ATTRIBUTES), _changed(
        f"it sets {sorted(stores - set(UVICORN_ATTRIBUTES))}, no longer {sorted(set(UVICORN_ATTRIBUTES) - stores)}"
    )


async def test_a_connection_keeps_no_attribute_in_a_dict() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = Config(app, ws=protocol_class(1.0), log_config=None, lifespan="off", ws_per_message_deflate=True)
    config.load()
    protocol = config.ws_protocol_class(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    assert vars(protocol) == {}
