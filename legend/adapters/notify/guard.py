"""The guard against server-side request forgery: a webhook URL is someone's input, and the server must not
become their way into its own network (an admin port on loopback, a database on 10.x, the cloud metadata
service at 169.254.169.254). A destination is refused when its scheme is not https (http only if allowed),
when it carries userinfo, or when its address, literal or resolved, is not a public unicast one, unless
it lies in a network the operator allowed (``[notifications] allow_networks``: on-premise receivers).

``check_url`` checks the URL and a literal address without any I/O (the REST layer calls it when a webhook
is registered); ``resolve_checked`` also resolves the name and checks every address it resolves to (at
every send: a name that resolved to a public address at registration may resolve to loopback now, DNS
rebinding). The sender then connects to those checked addresses only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpx

from legend.address_checks import bind_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits


class DestinationRefused(Exception):
    """A destination the server will not connect to; ``reason`` says why, for the user who registered it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def networks(entries: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """The allowed networks from CIDR strings; ValueError naming a bad entry."""
    found: list[IPNetwork] = []
    for entry in entries:
        if isinstance(entry, str):
            try:
                entry = ipaddress.ip_network(entry)
            except ValueError as exc:
                raise ValueError(
                    f"allow_networks: {entry!r} is not a network in CIDR notation (no host bits): {exc}"
                ) from None
        found.append(entry)
    return tuple(found)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped ``::ffff:a.b.c.d``, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden(address: IPAddress) -> str | None:
    """What kind of address ``address`` is that nothing is sent to (``"loopback"``, ``"private"``, …), or
    None for a public unicast one. An IPv6 address that stands for an IPv4 one is judged by that too."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and (kind := forbidden(embedded)) is not None:
            return kind
        if address.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (carrier-grade NAT)", isinstance(address, ipaddress.IPv4Address) and address in _SHARED),
        ("private", address.is_private and not address.is_reserved),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def check_address(address: IPAddress, allowed: Iterable[IPNetwork]) -> None:
    """DestinationRefused unless ``address`` is public or inside an allowed network."""
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if any(
        a in net for net in allowed for a in (address, embedded) if a is not None and a.version == net.version
    ):
        return
    kind = forbidden(address)
    if kind is not None:
        article = "an" if kind[0] in "aeiou" else "a"
        standing_for = f" (standing for {embedded})" if embedded is not None else ""
        raise DestinationRefused(
            f"{address}{standing_for} is {article} {kind} address; the server does not send there "
            "(an operator may allow a network in [notifications] allow_networks)"
        )


def _literal(host: str) -> IPAddress | None:
    """The address a host stands for without any lookup: an IP literal, or one of the legacy IPv4 forms
    the system resolver also reads as an address (``2130706433``, ``0x7f.1``, ``127.1``)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _parse(url: str, allow_http: bool) -> httpx.URL:
    """The URL as httpx reads it (the same parser the send uses: no difference to exploit), its scheme,
    userinfo and host checked."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise DestinationRefused(f"not a valid URL: {exc}") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        hint = "" if allow_http or parsed.scheme != "http" else " (http is not allowed on this server)"
        raise DestinationRefused(f"expected an {allowed} URL, got {parsed.scheme or 'no'} scheme{hint}")
    if parsed.userinfo:
        raise DestinationRefused("a URL with a user name or password is refused; put a secret in a header")
    host = parsed.host
    if not host:
        raise DestinationRefused("the URL has no host")
    if _literal(host) is None:
        try:
            bind_host(parsed.raw_host.decode("ascii"))
        except ValueError:
            raise DestinationRefused(f"not a valid host name: {host!r}") from None
    return parsed


def check_url(url: str, allow_http: bool, allow_networks: Iterable[str | IPNetwork]) -> None:
    """Refuse (DestinationRefused) a URL the server must not send to, as far as is known without a lookup:
    its scheme, userinfo, a literal address, ``localhost``. A name is resolved (and checked) at each send."""
    parsed = _parse(url, allow_http)
    allowed = networks(allow_networks)
    host = parsed.raw_host.decode("ascii").rstrip(".").lower()
    address = _literal(host)
    if address is not None:
        check_address(address, allowed)
    elif host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        for loopback in (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")):
            check_address(loopback, allowed)


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (asyncio's getaddrinfo, off the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(
    url: str,
    allow_http: bool,
    allow_networks: Iterable[str | IPNetwork],
    resolve: Resolver = system_resolve,
) -> tuple[httpx.URL, list[str]]:
    """The parsed URL and the addresses to connect to, every one of them checked: refused if ANY address
    the name resolves to is forbidden (a rebinding name that also answers with loopback is caught however
    its answers are ordered). OSError (socket.gaierror) when the name does not resolve."""
    check_url(url, allow_http, allow_networks)
    parsed = httpx.URL(url)
    allowed = networks(allow_networks)
    host = parsed.raw_host.decode("ascii")
    literal = _literal(host)
    addresses = [str(literal)] if literal is not None else await resolve(host, parsed.port or 0)
    if not addresses:
        raise DestinationRefused(f"{parsed.host} resolves to no address")
    for entry in addresses:
        address = _literal(entry)
        if address is None:
            raise DestinationRefused(f"{parsed.host} resolves to {entry!r}, not an address")
        check_address(address, allowed)
    return parsed, addresses
