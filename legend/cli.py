"""The ``legend`` command: ``legend serve [--host] [--port] [--workers N] [--config FILE]``, ``legend db upgrade
[REVISION]`` / ``legend db downgrade REVISION`` / ``legend db current`` for the database schema (the
server's tables and the enabled plugins' own), and
``legend plugins list [--config FILE] [--json]``, ``legend config check [--config FILE] [--json]`` (the
settings in effect, validated), and ``legend token create --user ID [--ttl SECONDS]
[--key FILE]`` for a user token in JWT mode."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from legend.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from legend.plugins.manager import PluginManager


def database(settings: Settings, action: str, revision: str | None) -> int:
    """Run a migration command against the configured database: on the server's tables and the tables of
    every enabled plugin that has some (``upgrade``: both up to their newest, ``downgrade base``: both down
    to nothing), on the server's alone (any other revision), or on one plugin's (``PLUGIN@REVISION``)."""
    import msgspec

    from legend.adapters.sql import Database, DatabaseError, migrate
    from legend.plugins.schemas import enabled_schemas

    schemas = {schema.plugin: schema for schema in enabled_schemas(settings) if schema.plugin}
    plugin, _, target = (revision or "").rpartition("@")
    if plugin and plugin not in schemas:
        print(
            f"legend: database error: {plugin!r} is no enabled plugin with tables of its own "
            f"(those are: {', '.join(sorted(schemas)) or 'none'})",
            file=sys.stderr,
        )
        return 1
    chosen = [schemas[plugin]] if plugin else list(schemas.values())

    async def run() -> int:
        # a migration may take long: no statement timeout here
        db = Database.from_settings(msgspec.structs.replace(settings.database, command_timeout=0))
        try:
            await asyncio.to_thread(db.make_directory)
            if action == "upgrade" and not plugin:
                await migrate.upgrade(db, target or "head")
            if action == "upgrade" and (plugin or target in ("", "head")):
                for schema in chosen:
                    await migrate.upgrade(db, target or "head", schema=schema)
            if action == "downgrade" and (plugin or target == "base"):
                for schema in chosen:
                    await migrate.downgrade(db, target, schema=schema)
            if action == "downgrade" and not plugin:
                await migrate.downgrade(db, target)
            at = await migrate.current(db)
            print(
                f"{db.safe_url}: at revision {at or 'none (empty)'}; newest is {migrate.head()}", flush=True
            )
            for schema in schemas.values():
                mine = await migrate.current(db, schema)
                print(
                    f"  plugin {schema.plugin}: at revision {mine or 'none (empty)'}; newest is "
                    f"{migrate.head(schema)}",
                    flush=True,
                )
            return 0
        except DatabaseError as exc:
            print(f"legend: database error: {exc}", file=sys.stderr)
            return 1
        finally:
            await db.close()

    return asyncio.run(run())


def plugin_check(settings: Settings) -> tuple[PluginManager, list[str]]:
    """The plugins loaded without starting any (imported, each table validated, their quote providers
    and tables registered) and the settings problems found: ``[plugins]`` and ``[quotes] provider``."""
    from legend.adapters.quotes import BUILT_IN, unknown_provider
    from legend.plugins.manager import PluginManager

    manager = PluginManager.from_settings(settings, strict=False)
    manager.register_quote_providers()
    manager.register_storage()
    problems = list(manager.problems)
    provider = str(settings.quotes.provider)
    if provider not in BUILT_IN and provider not in manager.providers:
        problems.append(str(unknown_provider(provider, manager.provider_names())))
    return manager, problems


def config_check(path: str | None, as_json: bool) -> int:
    """Validate the settings (file and environment), every installed plugin's table and the combinations
    ``legend serve`` refuses; print the effective settings (every key, credentials redacted) on stdout and
    each problem on stderr. 0 when ``legend serve`` would accept them, else 2."""
    from legend.effective_settings import effective_settings, to_json, to_toml
    from legend.plugins.settings import effective_configs
    from legend.server import settings_problems

    try:
        settings = load_settings(path)
    except SettingsError as exc:
        print(f"legend: settings error: {exc}", file=sys.stderr)
        return 2
    try:
        manager, problems = plugin_check(settings)
    except SettingsError as exc:  # [plugins] itself is malformed
        manager, problems = None, [str(exc)]
    problems += settings_problems(settings)
    plugin_tables = None
    if manager is not None:  # [plugins]' own keys and each plugin's table, defaults included
        own = {key: getattr(manager.options, key) for key in manager.options.__struct_fields__}
        plugin_tables = {**own, **effective_configs(manager.records, manager.tables)}
    tree = effective_settings(settings, plugin_tables)
    print(to_json(tree) if as_json else to_toml(tree), end="\n" if as_json else "", flush=True)
    for problem in problems:
        print(f"legend: settings error: {problem}", file=sys.stderr)
    if problems:
        print("legend: `legend serve` refuses to start with these settings", file=sys.stderr)
        return 2
    print("legend: settings OK", file=sys.stderr)
    return 0


def plugins(settings: Settings, as_json: bool) -> int:
    """List every discovered plugin: name, version, state, errors, hooks and the last error.

    Nothing is started: plugins are imported, the settings table of each is validated,
    ``register_quote_providers`` runs (to check ``[quotes] provider``) and ``register_storage`` (to list
    each plugin's own tables); no other hook does. Every plugin
    is listed even when the settings are wrong; then each error goes to stderr as ``legend serve`` would
    report it, and the exit status is 2, as for ``serve``.
    """
    import json

    from legend.plugins.discovery import KILL_SWITCH

    manager, problems = plugin_check(settings)
    rows = manager.summaries()
    if as_json:
        print(json.dumps({"plugins": rows, "settings_errors": problems}, indent=2), flush=True)
    elif not rows:
        print("no plugins found", flush=True)
    else:
        _plugin_table(rows, KILL_SWITCH)
    for problem in problems:
        print(f"legend: settings error: {problem}", file=sys.stderr)
    if problems:
        print("legend: `legend serve` refuses to start with these settings", file=sys.stderr)
        return 2
    return 0


def _plugin_table(rows: list[dict[str, Any]], kill_switch: str) -> None:
    header = ("NAME", "VERSION", "STATE", "ERRORS", "SOURCE", "HOOKS")
    table = [
        (
            r["name"],
            r["version"] or "-",
            r["state"],
            str(r["errors"]),
            r["source"],
            ", ".join(r["hooks"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in (header, *table)) for i in range(len(header) - 1)]
    for row in (header, *table):
        print(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
    for r in rows:
        if r["last_error"]:
            print(f"{r['name']}: last error: {r['last_error']}")
    blocked = [r["name"] for r in rows if r["state"] == "blocked"]
    if blocked:
        print(f"blocked by {kill_switch}: {', '.join(blocked)}", flush=True)


def token(settings: Settings, user_id: str, ttl: int, key: str | None) -> int:
    """Print a user token signed the way this server verifies them (stdout: the token alone)."""
    from legend.adapters.auth import Authenticator, TokenError

    try:
        issued = Authenticator(settings.security).issue_token(user_id, ttl, key)
    except TokenError as exc:
        print(f"legend: cannot create a token: {exc}", file=sys.stderr)
        return 2
    print(issued.token, flush=True)
    print(
        f"{issued.algorithm} token for {issued.user_id}, valid until {issued.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        file=sys.stderr,
    )
    return 0


SERVE_OPTIONS = ("host", "port", "workers")  # ``legend serve --host …``: the [server] keys of the same names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="legend", description="Legend Realtime streaming service")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the server")
    # Kept as text: each is validated like the same key in the settings file (SERVE_OPTIONS).
    run.add_argument("--host", help="bind address (default 127.0.0.1)")
    run.add_argument("--port", help="port (default 8000)")
    run.add_argument("--config", help="settings file (default $LEGEND_CONFIG)")
    run.add_argument(
        "--workers",
        help="worker processes on the one port (default 1; more than 1 needs redis.url; at most 2 per CPU)",
    )
    db = commands.add_parser("db", help="database schema migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="apply migrations (default: up to the newest)")
    up.add_argument(
        "revision",
        nargs="?",
        default="head",
        help="target revision (default head: the server's and every enabled plugin's tables); "
        "PLUGIN@REVISION for one plugin's tables",
    )
    down = db_commands.add_parser("downgrade", help="revert migrations down to a revision")
    down.add_argument(
        "revision",
        help="target revision, e.g. base (an empty database, plugins' tables too) or -1; "
        "PLUGIN@REVISION for one plugin's tables (PLUGIN@base: drop them)",
    )
    db_commands.add_parser("current", help="show the revision the database is at")
    plugin = commands.add_parser("plugins", help="installed plugins")
    plugin_commands = plugin.add_subparsers(dest="plugins_command", required=True)
    listing = plugin_commands.add_parser("list", help="name, version, state, errors and hooks of each plugin")
    listing.add_argument("--json", action="store_true", help="print JSON (as GET /api/plugins)")
    config = commands.add_parser("config", help="the settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check",
        help="validate the settings (file, environment, plugins) and print them in effect, secrets redacted",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    tokens = commands.add_parser("token", help="user tokens for security.auth = 'jwt'")
    token_commands = tokens.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="sign a token for a user and print it (paste it into the dashboard's sign-in)"
    )
    create.add_argument("--user", required=True, metavar="ID", help="the user id (the token's 'sub')")
    create.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="lifetime (default 3600)")
    create.add_argument(
        "--key", metavar="FILE", help="RS256: the private key (PEM) matching security.jwt_public_key"
    )
    for sub in (up, down, db_commands.choices["current"], listing, check, create):
        sub.add_argument("--config", help="settings file (default $LEGEND_CONFIG)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "config":
        return config_check(args.config, args.json)
    try:
        overrides = [
            (f"--{option}", "server", option, getattr(args, option))
            for option in SERVE_OPTIONS
            if getattr(args, option, None) is not None
        ]
        settings = load_settings(args.config, overrides=overrides)
        from legend.adapters.logs import logging_config

        logging.config.dictConfig(logging_config(settings.server.log_level, settings.server.log_format))
        if args.command == "serve":
            from legend.server import serve

            return serve(settings)
        if args.command == "db":
            return database(settings, args.db_command, getattr(args, "revision", None))
        if args.command == "plugins":
            return plugins(settings, args.json)
        if args.command == "token":
            return token(settings, args.user, args.ttl, args.key)
    except SettingsError as exc:
        print(f"legend: settings error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
