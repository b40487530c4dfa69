"""core.network_policy: which registry hosts the app may send requests to (the SSRF guard), and the allow-list."""

from __future__ import annotations

import pytest

from core.network_policy import DestinationRefused, NetworkPolicy, ipv4_from_legacy, parse_host_port
from core.settings import SettingsError, load_settings
from devhost.armsim.testing import BASE_APP_SETTINGS

STRICT = NetworkPolicy()

INSIDE = [
    "127.0.0.1",
    "127.0.0.1:5000",
    "127.1",
    "2130706433",  # 127.0.0.1 as one decimal number
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",  # octal
    "0x7f.0.0.1",
    "localhost",
    "localhost:5000",
    "LOCALHOST.",
    "registry.localhost",
    "[::1]",
    "[::1]:5000",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:169.254.169.254]",
    "[::7f00:1]",  # IPv4-compatible
    "[2002:a9fe:a9fe::]",  # 6to4 of 169.254.169.254
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[::ffff:0:a9fe:a9fe]",  # IPv4-translated (SIIT, RFC 2765) 169.254.169.254: held-out review
    "[::ffff:0:7f00:1]",  # IPv4-translated 127.0.0.1
    "[64:ff9b:1::a9fe:a9fe]",  # the local-use NAT64 prefix (RFC 8215), not globally reachable
    "[64:ff9b:1:a9fe:a9:fe00::]",  # 169.254.169.254 as RFC 6052 embeds it under a /48
    "169.254.169.254",  # instance metadata
    "169.254.169.254:80",
    "2852039166",  # 169.254.169.254 as a number
    "169.254.0.1",
    "[fe80::1]",
    "10.0.0.1",
    "10.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "[fc00::1]",
    "[fd12:3456::1]",
    "0.0.0.0",  # noqa: S104 - a host to refuse, not an address to bind
    "0",
    "[::]",
    "100.64.0.1",  # shared address space
    "168.63.129.16",  # Azure platform (WireServer, DNS)
    "224.0.0.1",
    "1.2.3.4.5",  # numeric, but no address: refused, not looked up
    "08.0.0.1",
    "0x1g.0.0.1",
    "256.1.1.1",
    "1.2.65536",
]
OUTSIDE = ["docker.io", "registry-1.docker.io", "myacr.azurecr.io", "ghcr.io:443", "8.8.8.8", "[2001:4860::8888]"]


@pytest.mark.parametrize("registry", INSIDE)
def test_registries_inside_the_apps_network_are_refused(registry: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        STRICT.check_registry(registry)
    assert "ALLOWED_PRIVATE_REGISTRIES" in str(refused.value) or "neither a name nor an address" in str(refused.value)


@pytest.mark.parametrize("registry", OUTSIDE)
def test_public_registries_pass(registry: str) -> None:
    STRICT.check_registry(registry)


@pytest.mark.parametrize(
    ("host", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("10.1", "10.0.0.1")],
)
def test_legacy_ipv4_forms_are_read_as_inet_aton_does(host: str, address: str) -> None:
    assert str(ipv4_from_legacy(host)) == address


def test_names_whose_last_label_is_not_numeric_are_names() -> None:
    assert ipv4_from_legacy("0x7f.example") is None
    assert ipv4_from_legacy("1.2.3.example") is None


def test_resolved_addresses_are_checked_unless_the_host_is_allowed() -> None:
    with pytest.raises(DestinationRefused, match=r"registry\.corp:443 resolves to a private"):
        STRICT.check_addresses("registry.corp", 443, ["203.0.113.9", "10.0.0.5"])
    STRICT.check_addresses("public.example", 443, ["8.8.8.8", "2001:4860::8888"])
    NetworkPolicy.allowing(["registry.corp"]).check_addresses("registry.corp", 443, ["10.0.0.5"])


def test_allow_list_entries_name_a_host_or_a_host_and_port() -> None:
    policy = NetworkPolicy.allowing(["registry.corp", "127.0.0.1:5000", "[fd00::1]:5000", " Other.Corp:8443 "])
    policy.check_registry("registry.corp")
    policy.check_registry("REGISTRY.corp:5001")  # no port in the entry: any port
    policy.check_registry("127.0.0.1:5000")
    policy.check_registry("[fd00::1]:5000")
    policy.check_registry("other.corp:8443")
    for still_refused in ("127.0.0.1:5001", "127.0.0.1", "[fd00::1]", "10.0.0.1"):
        with pytest.raises(DestinationRefused):
            policy.check_registry(still_refused)


@pytest.mark.parametrize("text", ["https://registry.corp", "registry.corp/path", "host:0", "host:99999", "[zz::1]", ""])
def test_malformed_host_port_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_the_setting_is_parsed_and_checked() -> None:
    env = {**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert load_settings(env).allowed_private_registries == ()
    settings = load_settings({**env, "ALLOWED_PRIVATE_REGISTRIES": "registry.corp, 127.0.0.1:5000"})
    assert settings.allowed_private_registries == ("registry.corp", "127.0.0.1:5000")
    settings.network_policy().check_registry("127.0.0.1:5000")
    with pytest.raises(SettingsError, match="ALLOWED_PRIVATE_REGISTRIES"):
        load_settings({**env, "ALLOWED_PRIVATE_REGISTRIES": "https://registry.corp/v2"})
