"""Property tests: the upload parsers raise nothing but InvalidUpload, whatever bytes the scanner sends."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.report import SEVERITIES_WORST_FIRST, InvalidUpload, parse_report, parse_status

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)
FINDING_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "qid": JSON_VALUES,
        "title": JSON_VALUES,
        "severity": st.sampled_from([1, 2, 3, 4, 5, 0, "HIGH", "low", "x", None, 4.5]) | JSON_VALUES,
        "cveIds": JSON_VALUES | st.lists(st.from_regex(r"CVE-\d{4}-\d{4,7}", fullmatch=True), max_size=5),
        "package": JSON_VALUES,
    },
)
REPORTS = st.fixed_dictionaries(
    {},
    optional={
        "vulnerabilities": st.lists(FINDING_VALUES | JSON_VALUES, max_size=30) | JSON_VALUES,
        "report": JSON_VALUES,
        "image": JSON_VALUES,
        "imageDigest": JSON_VALUES,
    },
)


def _summary_or_invalid(raw: bytes) -> Any:
    try:
        return parse_report(raw)
    except InvalidUpload:
        return None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_invalid_upload(raw: bytes) -> None:
    _summary_or_invalid(raw)
    with contextlib.suppress(InvalidUpload):
        parse_status(raw)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_raises_only_invalid_upload(value: object) -> None:
    raw = json.dumps(value).encode()
    _summary_or_invalid(raw)
    with contextlib.suppress(InvalidUpload):
        parse_status(raw)


@settings(max_examples=200, deadline=None)
@given(REPORTS)
def test_report_like_documents_always_summarise_consistently(document: dict[str, Any]) -> None:
    summary = parse_report(json.dumps(document).encode())
    counts = summary.vulnerabilities.model_dump()
    assert set(counts) == {s.value for s in SEVERITIES_WORST_FIRST}
    assert all(n >= 0 for n in counts.values())
    assert len(summary.worst_findings) <= min(10, summary.vulnerabilities.total)
    ranks = [f.severity.rank for f in summary.worst_findings]
    assert ranks == sorted(ranks, reverse=True)
    if summary.worst_findings:
        assert summary.worst_findings[0].severity == summary.worst_severity
