"""Where the app may send requests on a registry's behalf: never into its own network (pure; no I/O, no DNS).

A registry name comes from whoever can deploy or holds a function key, and a token realm from the registry itself,
so without a check the app could be made to call its own network: the instance metadata endpoint
(169.254.169.254), Azure's platform address (168.63.129.16), loopback services, private ranges. Refused, unless the
host is named in ALLOWED_PRIVATE_REGISTRIES:

- addresses that are not globally routable (`ipaddress` `is_global` false: loopback, link-local 169.254.0.0/16 and
  fe80::/10, private 10/8, 172.16/12, 192.168/16, fc00::/7, shared 100.64/10, unspecified, reserved, documentation),
  multicast, 168.63.129.16, and IPv6 forms that carry such an IPv4 address (mapped, IPv4-translated, 6to4, NAT64,
  Teredo), and the local-use NAT64 prefix 64:ff9b:1::/48;
- host literals in every form a URL parser or `inet_aton` reads as IPv4 (`2130706433`, `0x7f.1`, `0177.0.0.1`,
  `127.1`): a host whose last label is numeric is an address (the WHATWG URL rule), and an unparseable one is refused;
- the names `localhost` and `*.localhost` (RFC 6761), without asking DNS.

Names are checked again on what they resolve to, at the moment a connection is made (`check_addresses`), so a
name that points inside, or is re-pointed there after an earlier check, is refused too. An allow-list entry is
`host` (any port) or `host:port`, IPv6 in brackets; it names hosts, so an allowed name may resolve anywhere.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "ALLOWED_PRIVATE_REGISTRIES"
# Azure's virtual public IP of the host platform (DNS, health probes, the WireServer): public, yet inside.
AZURE_PLATFORM_ADDRESSES = frozenset({ipaddress.IPv4Address("168.63.129.16")})
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: not globally reachable (IANA), but Python 3.11's is_global does not know it.
LOCAL_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b:1::/48")
# RFC 2765 (SIIT) IPv4-translated addresses ::ffff:0:a.b.c.d carry an IPv4 address like the mapped form.
IPV4_TRANSLATED_PREFIX = ipaddress.IPv6Network("::ffff:0:0:0/96")
LOCAL_NAMES = ("localhost",)
HTTPS_PORT = 443
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/@\s]+))(?::(?P<port>\d{1,5}))?")
_NUMERIC_PART = re.compile(r"0[xX][0-9A-Fa-f]*|\d+")


class DestinationRefused(ValueError):
    """A request would go into the app's own network; the message says which host and why (never a token)."""


def parse_host_port(text: str) -> tuple[str, int | None]:
    """`host[:port]` or `[v6]:port` -> (lower-case host without a trailing dot, port or None); else ValueError."""
    match = _HOST_PORT.fullmatch(text.strip())
    if not match:
        raise ValueError("must be host or host:port (IPv6 in brackets), without scheme or path")
    host = (match["v6"] or match["host"] or "").lower().rstrip(".")
    port = int(match["port"]) if match["port"] else None
    if not host or (port is not None and not 1 <= port <= 65_535):
        raise ValueError("must be host or host:port with a port 1-65535")
    if match["v6"]:
        ipaddress.IPv6Address(host)  # ValueError when not an IPv6 address
    return host, port


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # ValueError for 08, 09: not a number in any form
    return int(part)


def ipv4_from_legacy(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means when its last label is numeric (`inet_aton` forms), None for a plain name.

    ValueError when it looks numeric but is no address (`1.2.3.4.5`, `0x1g`, `999.1`): such a host is refused.
    """
    parts = host.rstrip(".").split(".")
    if not _NUMERIC_PART.fullmatch(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC_PART.fullmatch(part) for part in parts):
        raise ValueError("a numeric host that is no IPv4 address")
    numbers = [_ipv4_number(part) for part in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("a numeric host that is no IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address a host literal denotes (IPv6 with or without brackets, IPv4 in any legacy form), else None."""
    bare = host.strip("[]")
    if ":" in bare:
        return ipaddress.IPv6Address(bare.split("%", 1)[0])
    return ipv4_from_legacy(bare)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found += list(address.teredo)
    if address in NAT64_PREFIX or address in IPV4_TRANSLATED_PREFIX or int(address) >> 32 == 0:
        # NAT64, SIIT's IPv4-translated and the deprecated IPv4-compatible ::a.b.c.d: the last 32 bits
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_problem(address: IPAddress) -> str | None:
    """Why the app must not connect to `address`, None when it is a public address."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (instance metadata lives there)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address in AZURE_PLATFORM_ADDRESSES:
        return "Azure's platform address"
    if isinstance(address, ipaddress.IPv6Address):
        if address in LOCAL_NAT64_PREFIX:
            return "a local-use NAT64 address (RFC 8215), not globally reachable"
        for inner in _embedded_ipv4(address):
            problem = address_problem(inner)
            if problem:
                return f"an IPv6 form of {problem}"
    if address.is_private or not address.is_global:
        return "a private or non-routable address"
    return None


def _shown(host: str, port: int | None) -> str:
    bare = host.strip("[]")
    name = f"[{bare}]" if ":" in bare else bare
    return name if port is None else f"{name}:{port}"


def check_allow_list(entries: Iterable[str]) -> tuple[str, ...]:
    """ALLOWED_PRIVATE_REGISTRIES entries, each `host` or `host:port`; ValueError naming the count of bad ones."""
    bad = 0
    for entry in entries:
        try:
            parse_host_port(entry)
        except ValueError:
            bad += 1
    if bad:
        raise ValueError(f"has {bad} invalid entr{'y' if bad == 1 else 'ies'}; expected host or host:port names")
    return tuple(entries)


@dataclass(frozen=True)
class NetworkPolicy:
    """The check applied to every registry destination; `allowed` are ALLOWED_PRIVATE_REGISTRIES entries."""

    allowed: frozenset[tuple[str, int | None]] = field(default_factory=frozenset)

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> NetworkPolicy:
        return cls(frozenset(parse_host_port(entry) for entry in entries if entry.strip()))

    def is_allowed(self, host: str, port: int | None) -> bool:
        """True when `host` (at `port`) is named in the allow-list: it may then be private."""
        key = host.lower().strip("[]").rstrip(".")
        return (key, None) in self.allowed or (port is not None and (key, port) in self.allowed)

    def check_host(self, host: str, port: int | None) -> None:
        """DestinationRefused for a literal inside address or a local name (no DNS); a plain name passes."""
        if self.is_allowed(host, port):
            return
        shown = _shown(host, port)
        name = host.lower().strip("[]").rstrip(".")
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            raise DestinationRefused(f"{shown} is a local name; {self._hint()}")
        try:
            address = ip_literal(name)
        except ValueError:
            raise DestinationRefused(f"{shown} is neither a name nor an address") from None
        problem = address_problem(address) if address is not None else None
        if problem:
            raise DestinationRefused(f"{shown} is {problem}; {self._hint()}")

    def check_addresses(self, host: str, port: int | None, addresses: Iterable[str]) -> None:
        """DestinationRefused when any address `host` resolved to is inside (and the host is not allowed)."""
        if self.is_allowed(host, port):
            return
        for text in addresses:
            problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
            if problem:
                raise DestinationRefused(f"{_shown(host, port)} resolves to {problem}; {self._hint()}")

    def check_registry(self, registry: str) -> None:
        """`check_host` for an image reference's registry part (`host[:port]`, https so 443 by default)."""
        try:
            host, port = parse_host_port(registry)
        except ValueError:
            raise DestinationRefused(f"{registry} is neither a name nor an address") from None
        self.check_host(host, port or HTTPS_PORT)

    @staticmethod
    def _hint() -> str:
        return f"name it in {SETTING} to allow a private registry"
