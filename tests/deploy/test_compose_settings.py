"""deploy/docker-compose.yml read as Docker Compose would, without Docker (it does not run on the machines
this project is tested on): the app services' environment, with compose's ``${VAR:-default}`` defaults,
is valid settings, and the instances believe X-Forwarded-For from exactly the nginx that the file runs."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml

from legend.descriptors import connection_cap
from legend.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: Any) -> str:
    """``${VAR:-default}`` → its default; ``${VAR:?message}`` (required) → a 32-character stand-in."""

    def one(match: re.Match[str]) -> str:
        return match.group(3) if match.group(2) == "-" else "x" * 32

    return VARIABLE.sub(one, str(value))


def test_the_instances_trust_exactly_the_nginx_in_front_of_them() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    nginx = interpolate(services["nginx"]["networks"]["default"]["ipv4_address"])
    subnet = interpolate(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(subnet)
    for name in ("app1", "app2"):
        environ = {key: interpolate(value) for key, value in services[name]["environment"].items()}
        settings = load_settings(environ=environ)  # every variable a valid setting
        assert settings.server.forwarded_allow_ips == [nginx], name


def test_the_instances_may_hold_tens_of_thousands_of_connections() -> None:
    """Their descriptor limit (one per WebSocket) is set, soft and hard, and leaves the default cap room."""
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    for name in ("app1", "app2"):
        nofile = services[name]["ulimits"]["nofile"]
        assert nofile["soft"] == nofile["hard"] >= 20_000, name
        assert connection_cap(0, nofile["hard"]) >= 19_000, name
