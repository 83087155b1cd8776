"""Client frame decoding, settings loading and environment overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from legend.domain.messages import Ping, ProtocolError, Subscribe, Unsubscribe, decode_client_message
from legend.settings import SettingsError, load_settings


def test_decode_every_client_message() -> None:
    assert decode_client_message('{"type":"ping"}') == Ping()
    assert decode_client_message(b'{"type":"subscribe","channel":"ticker","ticker":"AAPL"}') == Subscribe(
        channel="ticker", ticker="AAPL"
    )
    assert decode_client_message('{"type":"subscribe","channel":"alerts","since":{"alerts":3}}').since == {
        "alerts": 3
    }
    assert decode_client_message('{"type":"unsubscribe","channel":"ticker","ticker":"AAPL"}') == Unsubscribe(
        channel="ticker", ticker="AAPL"
    )


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ('{"type":"invalid"}', "unknown_type", "Unknown message type: invalid"),
        ('{"type":7}', "unknown_type", "Unknown message type: 7"),
        ("{}", "invalid_message", "Missing message type"),
        ("null", "invalid_message", "Message must be a JSON object"),
        ("{", "invalid_json", "Invalid JSON: Input data was truncated"),
        (
            '{"type":"unsubscribe"}',
            "invalid_message",
            "Invalid unsubscribe message: Object missing required field `channel`",
        ),
    ],
)
def test_decode_errors_say_what_is_wrong(frame: str, code: str, message: str) -> None:
    with pytest.raises(ProtocolError) as error:
        decode_client_message(frame)
    assert error.value.code == code and error.value.message == message


def test_defaults_without_a_file() -> None:
    settings = load_settings(environ={})
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8000
    assert settings.realtime.update_interval == 5 and settings.realtime.after_hours_interval == 60
    assert settings.realtime.max_messages_per_second == 10 and settings.realtime.history_size == 100
    assert settings.realtime.stale_after == 60 and settings.redis.url is None
    assert settings.server.ws_per_message_deflate is True and settings.server.ws_deflate_min_bytes == 128
    assert settings.server.forwarded_allow_ips == ["127.0.0.1", "::1"]  # uvicorn's loopback default


def test_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(
        '[realtime]\nupdate_interval = 2\n[security]\nallowed_origins = ["https://a.example"]\n'
    )
    settings = load_settings(
        config,
        environ={
            "REDIS_URL": "redis://r:6379",
            "REALTIME_AFTER_HOURS_INTERVAL": "30",
            "LEGEND_REALTIME__MAX_SUBSCRIPTIONS": "7",
            "LEGEND_SECURITY__ALLOW_INSECURE": "true",
            "LEGEND_ADMIN_TOKEN": "tok",
            "LEGEND_CONFIG": "/ignored/when/a/path/is/given",
        },
    )
    assert settings.realtime.update_interval == 2 and settings.realtime.after_hours_interval == 30
    assert settings.realtime.max_subscriptions == 7 and settings.security.allow_insecure is True
    assert settings.redis.url == "redis://r:6379" and settings.security.admin_token == "tok"
    assert settings.security.allowed_origins == ["https://a.example"]


def test_forwarded_allow_ips_takes_addresses_and_networks() -> None:
    value = '["172.18.0.0/16", "10.0.0.5", "fd00::/8", "::1"]'
    settings = load_settings(environ={"LEGEND_SERVER__FORWARDED_ALLOW_IPS": value})
    assert settings.server.forwarded_allow_ips == ["172.18.0.0/16", "10.0.0.5", "fd00::/8", "::1"]
    assert (
        load_settings(environ={"LEGEND_SERVER__FORWARDED_ALLOW_IPS": "[]"}).server.forwarded_allow_ips == []
    )


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text("[server]\nport = 9001\n")
    assert load_settings(environ={"LEGEND_CONFIG": str(config)}).server.port == 9001


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("[realtime]\nhistory_size = -1\n", {}, "$.realtime.history_size"),
        ("[realtim]\n", {}, "unknown field `realtim`"),
        ("[server\n", {}, "not valid TOML"),
        ("", {"REALTIME_UPDATE_INTERVAL": "soon"}, "REALTIME_UPDATE_INTERVAL"),
        ("", {"LEGEND_REALTIME__NOPE": "1"}, "unknown field `nope`"),
        ("", {"LEGEND_SECURITY__AUTH": "magic"}, "$.security.auth"),
        ('[server]\nforwarded_allow_ips = ["10.0.0.1", "nginx"]\n', {}, "'nginx' is not an IP address"),
        ("", {"LEGEND_SERVER__FORWARDED_ALLOW_IPS": '["10.1.2.3/8"]'}, "'10.1.2.3/8' is not an IP"),
        ("", {"LEGEND_SERVER__FORWARDED_ALLOW_IPS": '["*", "::1"]'}, "'*' trusts every peer"),
        ("[bars]\nkeep_1m_days = 0\n", {}, "Expected `int` >= 1 - at `$.bars.keep_1m_days`"),
        ('[bars]\nkeep_1m = "30d"\n', {}, "unknown field `keep_1m`"),
        ("", {"LEGEND_BARS__KEEP_1D_DAYS": "20"}, "keep_1d_days (20) is shorter than keep_1h_days (730)"),
        ("", {"LEGEND_BARS__PRUNE_INTERVAL": "0"}, "$.bars.prune_interval"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, env: dict[str, str], expected: str) -> None:
    config = tmp_path / "legend.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(config, environ=env)
    assert expected in str(error.value)


def test_bar_retention_per_interval_in_days() -> None:
    default = load_settings(environ={}).bars.keep()
    assert {interval: period.days for interval, period in default.items()} == {
        "1m": 30,
        "5m": 90,
        "15m": 180,
        "1h": 730,
        "1d": 3650,
    }
    changed = load_settings(environ={"LEGEND_BARS__KEEP_1M_DAYS": "7", "LEGEND_BARS__KEEP_5M_DAYS": "7"})
    assert changed.bars.keep()["1m"] == changed.bars.keep()["5m"] == timedelta(days=7)


def test_missing_file() -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings("/nonexistent/legend.toml", environ={})
