"""SCAN_EXCLUDE: parsing (bad entries named), matching rules, and properties of the glob parser."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exclusions import (
    MAX_EXCLUSION_CHARS,
    MAX_EXCLUSIONS,
    Exclusion,
    ExclusionRules,
    InvalidExclusion,
    check_exclusions,
    exclusion_reason,
    is_excluded,
    parse_exclusion,
    parse_exclusions,
)

SUB = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
ACI = f"/subscriptions/{SUB}/resourceGroups/Legacy-Apps/providers/Microsoft.ContainerInstance/containerGroups/web"


def test_entries_are_parsed_and_normalised() -> None:
    assert parse_exclusion(" RG: Legacy-* ") == Exclusion("rg", "legacy-*")
    assert parse_exclusion("Resource:/SUBSCRIPTIONS/*/web") == Exclusion("resource", "/subscriptions/*/web")
    assert parse_exclusion("image:ghcr.io/Acme/*:Dev-*") == Exclusion("image", "ghcr.io/Acme/*:Dev-*")
    assert check_exclusions(("rg:a", "RG:A", "image:x")) == ("rg:a", "image:x")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("foo:bar", "must start with rg:, resource: or image:"),
        ("legacy-*", "must start with rg:, resource: or image:"),
        ("rg:", "has an empty glob"),
        ("image:   ", "has an empty glob"),
        ("rg:a\x01b", "contains control characters"),
        ("rg:" + "a" * MAX_EXCLUSION_CHARS, f"longer than {MAX_EXCLUSION_CHARS} characters"),
    ],
)
def test_a_bad_entry_is_refused_by_name(entry: str, reason: str) -> None:
    with pytest.raises(InvalidExclusion) as caught:
        parse_exclusion(entry)
    assert reason in str(caught.value)
    assert repr(entry)[1:20] in str(caught.value)  # names the entry (escaped, clipped)


def test_too_many_entries_are_refused() -> None:
    with pytest.raises(InvalidExclusion, match=f"at most {MAX_EXCLUSIONS}"):
        parse_exclusions([f"rg:g{i}" for i in range(MAX_EXCLUSIONS + 1)])


def test_rg_and_resource_are_case_insensitive_image_is_not() -> None:
    rules = parse_exclusions(["rg:legacy-*", "image:docker.io/library/nginx:1.*"])
    assert exclusion_reason(rules, resource_id=ACI) == "excluded by SCAN_EXCLUDE rg:legacy-*"
    assert is_excluded(rules, resource_id=ACI.upper())
    assert is_excluded(rules, image="docker.io/library/nginx:1.27")
    assert not is_excluded(rules, image="docker.io/library/NGINX:1.27")
    assert not is_excluded(rules, image="docker.io/library/nginx:latest")
    assert not is_excluded(rules, resource_id=ACI.replace("Legacy-Apps", "apps"))
    resource = parse_exclusions([f"resource:/subscriptions/{SUB}/resourcegroups/*/providers/*/containergroups/web"])
    assert is_excluded(resource, resource_id=ACI)
    assert not is_excluded(resource, resource_id=ACI + "2")  # the whole id must match


def test_rg_glob_matches_the_group_name_not_a_substring() -> None:
    rules = parse_exclusions(["rg:legacy"])
    assert not is_excluded(rules, resource_id=ACI)  # Legacy-Apps is not legacy
    assert is_excluded(parse_exclusions(["rg:legacy-apps"]), resource_id=ACI)


def test_no_rules_exclude_nothing() -> None:
    assert exclusion_reason(ExclusionRules(), resource_id=ACI, image="docker.io/library/nginx:1.27") is None


_GLOB_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters=",", categories=("L", "N", "P", "S", "Zs")
    ),
    min_size=1,
)


@given(kind=st.sampled_from(["rg", "resource", "image", "RG", "Image"]), glob=_GLOB_TEXT)
def test_any_printable_glob_parses_to_a_round_tripping_entry(kind: str, glob: str) -> None:
    if not glob.strip() or len(kind) + 1 + len(glob) > MAX_EXCLUSION_CHARS:
        with pytest.raises(InvalidExclusion):
            parse_exclusion(f"{kind}:{glob}")
        return
    entry = parse_exclusion(f"{kind}:{glob}")
    assert entry.kind == kind.lower()
    assert parse_exclusion(entry.text) == entry


@given(value=st.text(alphabet="abcXYZ-._/:@", min_size=1, max_size=40))
def test_a_literal_glob_matches_exactly_its_value(value: str) -> None:
    assert parse_exclusion(f"image:{value}").matches(value)
    assert parse_exclusion(f"rg:{value}").matches(value.upper())
    assert parse_exclusion(f"image:{value}*").matches(value + "tail")


@given(glob=st.text(alphabet="ab*?[]!", min_size=1, max_size=12), value=st.text(alphabet="abAB", max_size=12))
def test_matching_is_fnmatchcase_lower_cased_for_rg(glob: str, value: str) -> None:
    assert parse_exclusion(f"rg:{glob}").matches(value) == fnmatch.fnmatchcase(value.lower(), glob.lower())
    assert parse_exclusion(f"image:{glob}").matches(value) == fnmatch.fnmatchcase(value, glob)


@given(entry=st.text(min_size=1, max_size=60))
def test_the_parser_never_raises_anything_but_invalid_exclusion(entry: str) -> None:
    try:
        parse_exclusion(entry)
    except InvalidExclusion as error:
        assert "\x00" not in str(error)
