"""A bad setting or command-line value stops ``legend serve`` with one line naming it and exit status 2,
before anything is done: no database created or migrated, no data directory, no socket bound, no
traceback. And ``legend config check`` shows the settings in effect, credentials redacted."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest

from legend.adapters.logs import redact_settings
from legend.settings import load_settings
from tests.support.server import free_port, run_legend, to_toml

# (command-line arguments, environment, settings file, what the one line of stderr must name)
BAD = {
    "port out of range": (["--port", "70000"], {}, {}, "--port: Expected `int` <= 65535 - at `$.server.port`"),
    "port not a number": (["--port", "http"], {}, {}, "at `$.server.port`"),
    "empty host": (["--host", ""], {}, {}, "--host: host: empty"),
    "host with a space": (["--host", "local host"], {}, {}, "--host: host: expected an IP address"),
    "no workers": (["--workers", "0"], {}, {}, "--workers: Expected `int` >= 1 - at `$.server.workers`"),
    "workers without redis": (["--workers", "2"], {}, {}, "server.workers = 2 needs the Redis backplane"),
    "redis url": ([], {"REDIS_URL": "notaurl"}, {}, "environment variable REDIS_URL: url: not a Redis URL"),
    "redis port": ([], {"REDIS_URL": "redis://localhost:99999/0"}, {}, "REDIS_URL: url: not a Redis URL"),
    "database url": ([], {"LEGEND_DATABASE__URL": "garbage"}, {}, "LEGEND_DATABASE__URL: url: not a database URL"),
    "database backend": (
        [], {"LEGEND_DATABASE__URL": "mysql+aiomysql://u:hunter2@db/legend"}, {}, "unsupported backend 'mysql'"
    ),
    "database scheme": ([], {"LEGEND_DATABASE__URL": "foo://x/y"}, {}, "unsupported backend 'foo'"),
    "database driver": (
        [], {"LEGEND_DATABASE__URL": "postgresql+pg9000://u@db/legend"}, {}, "unsupported driver 'pg9000'"
    ),
    "sentinel": ([], {"LEGEND_REDIS__SENTINELS": '["s1:0"]', "LEGEND_REDIS__SERVICE_NAME": "m"}, {}, "sentinels"),
    "login url": ([], {"LEGEND_SECURITY__LOGIN_URL": "https://"}, {}, "login_url: expected an http"),
    "log level": ([], {"LEGEND_SERVER__LOG_LEVEL": "loud"}, {}, "at `$.server.log_level`"),
    "vendor url": ([], {}, {"quotes": {"provider": "finnhub"}, "quotes.finnhub": {"base_url": "http://"}}, "base_url"),
    "calendar": ([], {}, {"market": {"calendar": "NOPE"}}, "market.calendar: unknown exchange calendar 'NOPE'"),
    "dev mode on every interface": (["--host", "0.0.0.0"], {}, {}, "is not a loopback address"),
    "jwt key file": (
        [], {"LEGEND_SECURITY__AUTH": "jwt", "LEGEND_SECURITY__JWT_PUBLIC_KEY": "no-such.pem"}, {},
        "security.jwt_public_key: cannot read no-such.pem",
    ),
    "data dir cannot be made": ([], {"LEGEND_DATABASE__DATA_DIR": "/proc/no-such-dir"}, {}, "database.data_dir: cannot create"),
    "host that does not resolve": (["--host", "no-such-host.invalid"], {}, {"security": {"allow_insecure": True}}, "server.host: cannot bind no-such-host.invalid"),
    "config is a directory": (["--config", "."], {}, {}, "cannot be read"),
    "config is empty": (["--config", ""], {}, {}, "--config: the path is empty"),
}  # fmt: skip


@pytest.mark.parametrize(("args", "env", "config", "named"), list(BAD.values()), ids=list(BAD))
def test_a_bad_value_stops_serve_before_anything_is_done(
    tmp_path: Path, args: list[str], env: dict[str, str], config: dict[str, dict[str, object]], named: str
) -> None:
    """The data directory is the default ./data in a fresh directory: a start that went as far as the
    database (the OverflowError of --port 70000 came after the migration) would have made it."""
    port = str(free_port())
    if config:
        (tmp_path / "legend.toml").write_text(to_toml(config), encoding="utf-8")
        args = [*args, "--config", "legend.toml"]
    if "--port" not in args:
        args = [*args, "--port", port]
    result = run_legend("serve", *args, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("legend: settings error: "), result.stderr
    assert named in lines[0]
    assert "hunter2" not in result.stderr  # a password in a URL is not repeated
    assert not (tmp_path / "data").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["legend.toml"] if config else [])


def test_a_port_in_use_stops_serve_before_the_database_is_made(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_legend("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"legend: settings error: server.port: cannot bind 127.0.0.1:{port}: Address already in use"
    ]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///legend.db",
        "sqlite+aiosqlite:///:memory:",
        "postgres://legend:pw@db/legend",
        "postgres+asyncpg://db/legend",
        "postgresql+psycopg2://db:5433/legend",
    ],
)
def test_database_urls_that_are_accepted(url: str) -> None:
    assert load_settings(environ={"LEGEND_DATABASE__URL": url}).database.url == url


def test_command_line_values_are_validated_like_the_file(tmp_path: Path) -> None:
    """--port given as text is converted as the file's value would be, and overrides the file."""
    (tmp_path / "legend.toml").write_text("[server]\nport = 9000\nhost = 'localhost'\n")
    settings = load_settings(
        tmp_path / "legend.toml", environ={}, overrides=[("--port", "server", "port", "8123")]
    )
    assert (settings.server.port, settings.server.host) == (8123, "localhost")


def test_config_check_prints_every_key_with_credentials_redacted(tmp_path: Path) -> None:
    config = {
        "redis": {"url": "redis://:hunter2@localhost:6379/0"},
        "security": {"admin_token": "admin-hunter2", "auth": "jwt", "jwt_secret": "hunter2" * 6},
        "database": {"url": "postgresql+asyncpg://legend:hunter2@db/legend"},
        "quotes.finnhub": {"api_key": "finnhub-hunter2"},
        "plugins.news": {"feeds": []},
    }
    (tmp_path / "legend.toml").write_text(to_toml(config), encoding="utf-8")
    result = run_legend("config", "check", "--config", "legend.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["redis"]["url"] == "redis://:***@localhost:6379/0"
    assert printed["database"]["url"] == "postgresql+asyncpg://legend:***@db/legend"
    assert printed["security"]["admin_token"] == printed["quotes"]["finnhub"]["api_key"] == "[redacted]"
    assert printed["realtime"]["update_interval"] == 5.0  # defaults too
    assert printed["plugins"]["news"]["history_size"] == 100  # a plugin's table as the plugin reads it
    assert "# jwt_public_key = (unset)" in result.stdout  # unset keys are shown, as comments
    # what is printed is a settings file that loads (to the same values, secrets aside)
    (tmp_path / "printed.toml").write_text(result.stdout, encoding="utf-8")
    again = load_settings(tmp_path / "printed.toml", environ={})
    assert again.realtime == load_settings(tmp_path / "legend.toml", environ={}).realtime
    as_json = json.loads(
        run_legend("config", "check", "--config", "legend.toml", "--json", cwd=tmp_path).stdout
    )
    assert as_json["redis"]["url"] == printed["redis"]["url"] and as_json["redis"]["sentinels"] == []
    assert as_json["security"]["jwt_public_key"] is None


def test_config_check_reports_each_problem_and_exits_2(tmp_path: Path) -> None:
    config = {
        "server": {"host": "0.0.0.0", "workers": 2},
        "security": {"auth": "jwt", "jwt_secret": "short"},
        "plugins.news": {"feds": []},
    }
    (tmp_path / "legend.toml").write_text(to_toml(config), encoding="utf-8")
    result = run_legend("config", "check", "--config", "legend.toml", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("legend: settings error: ")]
    assert len(errors) == 3, result.stderr
    assert "unknown setting `feds`" in errors[0]
    assert "needs the Redis backplane" in errors[1] and "at least 32 characters" in errors[2]
    assert tomllib.loads(result.stdout)["server"]["workers"] == 2  # still shown
    bad = run_legend("config", "check", env={"REDIS_URL": "notaurl"}, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "legend: settings error: environment variable REDIS_URL: url: not a Redis URL: Redis URL must "
        "specify one of the following schemes (redis://, rediss://, unix://) - at `$.redis`"
    ]


def test_redaction_reaches_plugin_tables_lists_and_urls() -> None:
    """One way to redact (legend.adapters.logs): secret keys at any depth, URL passwords, query tokens."""
    tree = {
        "plugins": {
            "news": {"feeds": [{"url": "https://feeds.example/rss?token=t0k&x=1", "kind": "rss"}]},
            "broker": {"webhook_secret": "s3cret", "api_keys": ["k1", "k2"], "account_password": None},
        },
        "redis": {"sentinels": ["s1:26379"], "url": "rediss://user:pa55@redis:6380/0"},
    }
    assert redact_settings(tree) == {
        "plugins": {
            "news": {"feeds": [{"url": "https://feeds.example/rss?token=[redacted]&x=1", "kind": "rss"}]},
            "broker": {
                "webhook_secret": "[redacted]",
                "api_keys": ["[redacted]"] * 2,
                "account_password": None,
            },
        },
        "redis": {"sentinels": ["s1:26379"], "url": "rediss://user:***@redis:6380/0"},
    }
