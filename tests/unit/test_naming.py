"""Deterministic names are stable, distinct and valid for ACI and Table keys."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import naming
from core.settings import load_settings

CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")  # Azure's rule: 3-63, single hyphens
MINIMAL_ENV = {
    "QUALYS_POD": "US1",
    "QUALYS_ACCESS_TOKEN": "t",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "SCANNER_RESOURCE_GROUP": "rg-scanner",
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
valid_prefixes = st.from_regex(
    rf"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){{2,{naming.MAX_UPLOADS_CONTAINER_PREFIX_CHARS - 1}}}", fullmatch=True
)


def test_instance_id_is_deterministic_and_case_insensitive() -> None:
    a = naming.instance_id_for("/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG", "C0FFEE")
    b = naming.instance_id_for("/subscriptions/x/resourceGroups/rg", "c0ffee")
    assert a == b
    assert a != naming.instance_id_for("/subscriptions/x/resourceGroups/rg", "other")


def test_scanner_group_name_is_valid_for_aci() -> None:
    name = naming.scanner_group_name("scan-abc")
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name)
    assert name.startswith(naming.SCANNER_GROUP_PREFIX)
    assert name == naming.scanner_group_name("scan-abc")


def test_image_key_prefers_digest() -> None:
    digest = "sha256:" + "a" * 64
    assert naming.image_key("docker.io/library/nginx:1", digest) == naming.image_key("other:2", digest)
    assert naming.image_key("docker.io/library/nginx:1") != naming.image_key("docker.io/library/nginx:2")


def test_uploads_container_is_per_group_and_deterministic() -> None:
    first, second = naming.scanner_group_name("scan-abc"), naming.scanner_group_name("scan-abc:1")
    name = naming.uploads_container_name("scan-uploads", first)
    assert name == naming.uploads_container_name("scan-uploads", first)
    assert re.fullmatch(r"scan-uploads-[0-9a-f]{24}", name)
    assert name != naming.uploads_container_name("scan-uploads", second)
    assert name != naming.uploads_container_name("other-uploads", first)


@given(prefix=valid_prefixes, group=st.text(min_size=1, max_size=80))
def test_every_setting_prefix_gives_a_valid_container_name(prefix: str, group: str) -> None:
    """Whatever UPLOADS_CONTAINER the settings accept, every group's container name is valid for Azure."""
    accepted = load_settings({**MINIMAL_ENV, "UPLOADS_CONTAINER": prefix}).uploads_container
    assert CONTAINER_NAME.fullmatch(naming.uploads_container_name(accepted, group))


def test_longest_prefix_fills_63_characters_and_a_longer_one_is_refused() -> None:
    longest = "u" * naming.MAX_UPLOADS_CONTAINER_PREFIX_CHARS
    assert len(naming.uploads_container_name(longest, "qscan-x")) == naming.MAX_CONTAINER_NAME_CHARS
    with pytest.raises(ValueError, match="longer than"):
        naming.uploads_container_name(longest + "u", "qscan-x")
