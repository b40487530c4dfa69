"""Deterministic names are stable, distinct and valid for ACI and Table keys."""

import re

from core import naming


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
