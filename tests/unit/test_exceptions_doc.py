"""Exceptions: validation (the document is refused whole, naming the entry), matching, expiry boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions_doc import (
    ExceptionEntry,
    InvalidExceptions,
    apply_to_summary,
    effective_result,
    expired_between,
    parse_document,
    under_scope,
)
from core.report import Finding, ImageResult, ReportSummary, Severity

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-apps"
APP = f"{RG}/providers/Microsoft.App/containerApps/shop"
NGINX = "docker.io/library/nginx:1.27"


def entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "ex-1", "qid": 100001, "image": "docker.io/library/nginx:*", "reason": "r"}
    return base | {"owner": "secops", "expires": "2026-12-31T00:00:00Z"} | fields


def doc(*entries: dict[str, object]) -> dict[str, object]:
    return {"version": 0, "exceptions": list(entries)}


def finding(qid: str, severity: str = "CRITICAL", level: int = 5, cves: tuple[str, ...] = ()) -> Finding:
    return Finding(qid=qid, title=f"t{qid}", severity=Severity(severity), level=level, cves=cves)


def summary(*findings: Finding) -> ReportSummary:
    levels = dict.fromkeys((5, 4, 3, 2, 1), 0)
    for f in findings:
        levels[f.level] += 1
    return ReportSummary(source="sarif", levels=levels, worst_findings=findings)


def test_the_issue_example_is_valid_with_qid_or_cve() -> None:
    parsed = parse_document(doc(entry(scope=RG), entry(id="ex-2", qid=None, cve="cve-2025-0395")), NOW)
    assert [e.id for e in parsed.exceptions] == ["ex-1", "ex-2"]
    assert parsed.exceptions[1].cve == "CVE-2025-0395"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry(reason=""), "exceptions[1].reason"),
        (entry(owner=None), "exceptions[1].owner"),
        (entry(expires=None), "exceptions[1].expires"),
        (entry(expires="2026-12-31T00:00:00"), "exceptions[1].expires"),  # no time zone
        (entry(qid=None, cve="CVE-2025-1"), "must look like CVE-2025-0395"),
        (entry(cve="CVE-2025-0395"), "exactly one of qid and cve"),
        (entry(qid=None), "exactly one of qid and cve"),
        (entry(image=None), "an image pattern, a scope"),
        (entry(scope="/resourceGroups/rg"), "exceptions[1].scope"),
        (entry(scope=f"{SUB}/providers/x"), "resourceGroups"),
        (entry(qid="100001"), "exceptions[1].qid"),  # strict: a string is not a QID
        (entry(image="nginx:*"), "canonical reference"),
        (entry(id="ex-0"), "used twice"),
        (entry(expires="2027-12-31T00:00:00Z"), "EXCEPTION_MAX_DAYS"),
    ],
)
def test_a_bad_entry_refuses_the_whole_document_naming_it(bad: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidExceptions, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_document(doc(entry(id="ex-0"), bad), NOW)


def test_not_an_object_and_unknown_top_level_keys_are_refused() -> None:
    with pytest.raises(InvalidExceptions):
        parse_document([entry()], NOW)
    with pytest.raises(InvalidExceptions, match="Extra inputs"):
        parse_document({"exceptions": [], "other": 1}, NOW)


def test_extra_entry_fields_are_kept() -> None:
    parsed = parse_document(doc(entry(ticket="SEC-1")), NOW)
    assert parsed.exceptions[0].model_dump()["ticket"] == "SEC-1"


def test_scope_is_a_case_insensitive_prefix_on_segment_boundaries() -> None:
    assert under_scope(APP, RG.upper())
    assert under_scope(RG, RG + "/")
    assert not under_scope(f"{SUB}/resourceGroups/rg-apps2/x", RG)
    assert under_scope(APP, SUB)


@given(st.text(alphabet="abc-/", min_size=1, max_size=20), st.text(alphabet="abc-/", min_size=1, max_size=20))
def test_scope_never_matches_a_longer_sibling_segment(rest: str, suffix: str) -> None:
    scope = f"{RG}"
    sibling = f"{RG}{suffix.lstrip('/')}x/{rest}"
    assert not under_scope(sibling, scope)
    assert under_scope(f"{RG}/{rest}", scope)


def test_matching_needs_the_qid_or_cve_the_image_and_the_scope() -> None:
    parsed = parse_document(doc(entry(scope=RG), entry(id="ex-cve", qid=None, cve="CVE-2026-00002")), NOW)
    report = summary(finding("100001"), finding("100002", "HIGH", 4, ("CVE-2026-00002",)), finding("100003"))
    applied = apply_to_summary(report, NGINX, [APP], parsed.exceptions, NOW)
    assert [f.qid for f in applied.suppressed] == ["100001", "100002"]
    assert applied.exception_ids == ("ex-1", "ex-cve")
    assert applied.by_severity == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0}
    assert applied.summary.levels[5] == 1 and applied.summary.levels[4] == 0
    elsewhere = apply_to_summary(report, NGINX, [f"{SUB}/resourceGroups/other/x"], parsed.exceptions, NOW)
    assert [f.qid for f in elsewhere.suppressed] == ["100002"]  # ex-1's scope misses; ex-cve has none
    other_image = apply_to_summary(report, "docker.io/library/redis:7", [APP], parsed.exceptions, NOW)
    assert not other_image.suppressed


@given(st.integers(min_value=-5, max_value=5))
def test_an_exception_applies_strictly_before_its_expiry(offset: int) -> None:
    expires = NOW + timedelta(days=3)
    parsed = parse_document(doc(entry(expires=expires.isoformat())), NOW)
    at = expires + timedelta(seconds=offset)
    applied = apply_to_summary(summary(finding("100001")), NGINX, [], parsed.exceptions, at)
    assert bool(applied.suppressed) == (at < expires)
    assert [e.id for e in expired_between(parsed, at - timedelta(seconds=1), at)] == (["ex-1"] if at == expires else [])


@given(st.integers(min_value=0, max_value=400))
def test_the_expiry_bound_is_exception_max_days(days: int) -> None:
    expires = NOW + timedelta(days=days)
    ok = days <= 90
    try:
        parse_document(doc(entry(expires=expires.isoformat())), NOW, max_days=90)
    except InvalidExceptions:
        assert not ok
    else:
        assert ok


def test_the_effective_result_drops_the_suppressed_severity() -> None:
    parsed = parse_document(doc(entry()), NOW)
    report = summary(finding("100001"), finding("100002", "MEDIUM", 3))
    result = ImageResult.model_validate(
        {
            "image": NGINX,
            "status": "completed",
            "vulnerabilities": {"CRITICAL": 1, "MEDIUM": 1},
            "worst_severity": "CRITICAL",
        }
    )
    effective = effective_result(result, apply_to_summary(report, NGINX, [], parsed.exceptions, NOW))
    assert effective.worst_severity == "MEDIUM" and effective.vulnerabilities.CRITICAL == 0
    assert result.worst_severity == "CRITICAL"  # the stored result is untouched


def test_entries_are_frozen_models() -> None:
    assert isinstance(parse_document(doc(entry()), NOW).exceptions[0], ExceptionEntry)


TAGS = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)


@given(TAGS, TAGS)
def test_an_image_glob_matches_the_canonical_reference_only(tag: str, other: str) -> None:
    parsed = parse_document(doc(entry(image=f"docker.io/library/nginx:{tag}")), NOW).exceptions[0]
    assert parsed.matches_target(f"docker.io/library/nginx:{tag}", [])
    assert parsed.matches_target(f"docker.io/library/nginx:{other}", []) == (tag == other)
    assert not parsed.matches_target(f"docker.io/library/nginx-{tag}:{tag}", [])
    star = parse_document(doc(entry()), NOW).exceptions[0]
    assert star.matches_target(f"docker.io/library/nginx:{other}", [])
    assert not star.matches_target(f"docker.io/library/nginx@sha256:{'a' * 64}", [])  # a tag glob is not a digest


@given(st.sampled_from(["cve-2026-00002", "CVE-2026-00002", "Cve-2026-00002"]), st.booleans())
def test_cve_matching_ignores_case(cve: str, listed: bool) -> None:
    parsed = parse_document(doc(entry(qid=None, cve=cve)), NOW).exceptions[0]
    found = finding("100002", "HIGH", 4, ("CVE-2026-00002",) if listed else ("CVE-2026-00003",))
    assert parsed.matches_finding(found) == listed


@given(st.integers(min_value=0, max_value=4))
def test_suppressed_counts_never_go_negative_and_unlisted_findings_stay(extra_unlisted: int) -> None:
    report = summary(finding("100001"))
    report = report.model_copy(update={"levels": {**report.levels, 5: 1 + extra_unlisted}})
    applied = apply_to_summary(report, NGINX, [], parse_document(doc(entry()), NOW).exceptions, NOW)
    assert applied.summary.levels[5] == extra_unlisted  # only the listed finding is suppressed
    assert extra_unlisted == applied.summary.vulnerabilities.CRITICAL


def test_scenario_inline_exceptions_take_relative_expiries_or_the_whole_document() -> None:
    from devhost.demo_exceptions import InlineExceptionsError, parse_inline, resolve

    relative = {k: v for k, v in entry(expires_after_s=600).items() if k != "expires"}
    assert parse_inline([relative]) == (relative,)
    assert parse_inline({"exceptions": [relative]}) == (relative,)
    assert resolve([relative], NOW)["exceptions"][0]["expires"] == (NOW + timedelta(seconds=600)).isoformat()
    for bad in ([entry(expires_after_s=600)], [{**relative, "expires_after_s": -1}], "x", [entry(owner="")]):
        with pytest.raises(InlineExceptionsError):
            parse_inline(bad)


def test_a_scenario_with_bad_exceptions_is_a_scenario_error() -> None:
    from devhost.demo_scenario import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match=r"exceptions: exceptions\[0\]\.owner"):
        parse_scenario({"resources": [], "messages": [], "exceptions": [entry(owner="")]})
    assert parse_scenario({"resources": [], "messages": [], "exceptions": [entry()]}).exceptions[0]["id"] == "ex-1"
