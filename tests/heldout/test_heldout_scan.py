"""Held-out check of issue 9 (independent of the implementers' fakes): the held-out `qscanner` of this folder,
run by the real scanner/scan.sh against Azurite, then the app's collect path over what scan.sh uploaded.

Real shapes (from ../shared/reference/qscanner.md) must give their counts; shapes no source describes must end
`failed` with "report not understood: ..." and never be cached.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.results_collect import collect_results
from activities.results_store import lookup_cache, store_results
from core.report import ImageResult
from core.results import CacheLookupRequest, CollectRequest, ImageToCheck, StoreRequest
from devhost.azurite import Azurite
from tests.integration.test_results_store_support import azurite_settings, clients, scanner_uploads, upload
from tests.scanner.conftest import DownloadServer, ScanHarness, ScanRun

pytestmark = pytest.mark.azurite

HELDOUT = Path(__file__).with_name("heldout_qscanner")
NOW = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
D4 = "sha256:" + "4" * 64
LIBC = [["libc-bin", "2.36-9", "2.36-10"], ["libc6", "2.36-9", "2.36-10"]]
NOT_UNDERSTOOD = "report not understood: "


def _sarif(rules: list[dict[str, Any]], results: list[dict[str, Any]] | None) -> str:
    run: dict[str, Any] = {"tool": {"driver": {"name": "qscanner", "rules": rules}}}
    if results is not None:
        run["results"] = results
    return json.dumps({"version": "2.1.0", "runs": [run]})


# image -> (case for the held-out qscanner, expected status, expected per-level counts or None)
CASES: dict[str, tuple[dict[str, Any], str, dict[int, int] | None]] = {
    "docker.io/heldout/readme:1": (
        {
            "findings": [
                {"qid": 6019286, "severity": 4, "packages": LIBC, "cves": ["CVE-2025-0395"]},
                {"qid": 38170, "severity": 3},
                {"qid": 38171, "severity": 3},
            ],
            "repo_digests": [f"docker.io/heldout/readme@{D4}"],
        },
        "completed",
        {5: 0, 4: 1, 3: 2, 2: 0, 1: 0},
    ),
    "docker.io/heldout/customer:1": (
        {
            "findings": [{"qid": 1, "severity": 3, "customerSeverity": 5}, {"qid": 2, "severity": 2}],
            "log_style": "bracket",
        },
        "completed",
        {5: 1, 4: 0, 3: 0, 2: 1, 1: 0},
    ),
    "docker.io/heldout/levelonly:1": (
        {
            "findings": [{"qid": 11, "level_only": 5}, {"qid": 12, "level_only": 3}],
            "log_style": "ansi",
            "no_json": True,
        },
        "completed",
        {5: 1, 4: 0, 3: 1, 2: 0, 1: 0},
    ),
    "docker.io/heldout/clean:1": ({"findings": [], "log_style": "crlf"}, "completed", {5: 0, 4: 0, 3: 0, 2: 0, 1: 0}),
    "docker.io/heldout/cleanzero:1": (
        {"findings": [], "omit_severity_lines": True},
        "completed",
        {5: 0, 4: 0, 3: 0, 2: 0, 1: 0},
    ),
    "docker.io/heldout/nested:1": (
        {
            "findings": [{"qid": 5, "severity": 5}],
            "nested": "run-1/out",
            "extra_files": ["changelist.json", "abc-gitlab_vuln_report.json", "notes-Report.txt"],
        },
        "completed",
        {5: 1, 4: 0, 3: 0, 2: 0, 1: 0},
    ),
    # Shapes no source describes: failed, "report not understood".
    "docker.io/heldout/noresults:1": (
        {"findings": [{"qid": 5, "severity": 5}], "no_json": True, "sarif_raw": _sarif([], None)},
        "failed",
        None,
    ),
    "docker.io/heldout/norules-nolevel:1": (
        {
            "findings": [{"qid": 5, "severity": 5}],
            "no_json": True,
            "sarif_raw": _sarif([], [{"ruleId": "5", "message": {"text": "x"}}]),
        },
        "failed",
        None,
    ),
    "docker.io/heldout/othershape:1": (
        {
            "findings": [{"qid": 5, "severity": 5}],
            "no_sarif": True,
            "json_raw": json.dumps(
                {"version": "15.0.0", "vulnerabilities": [{"id": "x", "severity": "High", "name": "CVE-2025-1"}]}
            ),
        },
        "failed",
        None,
    ),
    "docker.io/heldout/disagree:1": (
        {"findings": [{"qid": 5, "severity": 5}], "log_levels": {5: 2, 4: 0, 3: 0, 2: 0, 1: 0}},
        "failed",
        None,
    ),
    "docker.io/heldout/nocount:1": ({"findings": [{"qid": 5, "severity": 5}], "omit_counts": True}, "failed", None),
    "docker.io/heldout/nosevlines:1": (
        {"findings": [{"qid": 5, "severity": 5}], "omit_severity_lines": True},
        "failed",
        None,
    ),
    "docker.io/heldout/truncated:1": (
        {"findings": [{"qid": 5, "severity": 5}], "truncate": "sarif", "no_json": True},
        "failed",
        None,
    ),
    "docker.io/heldout/unknownsev:1": (
        {
            "findings": [{"qid": 5, "severity": 5}],
            "no_json": True,
            "sarif_raw": _sarif(
                [{"id": "5", "properties": {"severity": 9}}],
                [{"ruleId": "5", "level": "error", "properties": {"QID": 5}}],
            ),
        },
        "failed",
        None,
    ),
    "docker.io/heldout/unknownsev-json:1": (
        {
            "findings": [{"qid": 5, "severity": 5}],
            "no_sarif": True,
            "json_raw": json.dumps({"Vulnerabilities": [{"QID": 5, "Severity": "Urgent"}]}),
        },
        "failed",
        None,
    ),
}


@pytest.fixture
def heldout(harness: ScanHarness, tmp_path: Path, download_server: DownloadServer) -> Iterator[ScanHarness]:
    """The scan harness with the held-out qscanner on PATH instead of the project's fake."""
    fake = harness.fake_bin / "qscanner"
    fake.write_bytes(HELDOUT.read_bytes())
    fake.chmod(0o755)
    yield harness


def _run(harness: ScanHarness, tmp_path: Path, cases: dict[str, dict[str, Any]], **env: str) -> ScanRun:
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    record = tmp_path / "heldout-record.txt"
    return harness.run(
        list(cases), env={"HELDOUT_CASES": str(spec), "HELDOUT_RECORD": str(record), "PYTHONPATH": None, **env}
    )


def _collect(
    azurite: Azurite, run: ScanRun, images: list[str], mode: str = "get-report"
) -> tuple[list[ImageResult], Any]:
    settings = azurite_settings(azurite)
    instance = f"heldout-{uuid.uuid4().hex[:12]}"
    scanner = scanner_uploads(settings, instance)
    for name, body in run.blobs.items():
        upload(scanner, f"{instance}/{name}", body)
    request = CollectRequest(
        instance_id=instance,
        images=[ImageToCheck(image=i) for i in images],
        now=NOW,
        mode=mode,  # type: ignore[arg-type]
    )
    return collect_results(clients(settings), settings, request), settings


def test_report_shapes_through_scan_sh_and_collect(heldout: ScanHarness, tmp_path: Path, azurite: Azurite) -> None:
    run = _run(heldout, tmp_path, {image: case for image, (case, _, _) in CASES.items()})
    results, settings = _collect(azurite, run, list(CASES))
    problems = []
    for result in results:
        _, status, levels = CASES[result.image]
        if result.status != status:
            problems.append(f"{result.image}: {result.status} ({result.reason}), expected {status}")
        elif status == "failed" and not (result.reason or "").startswith(NOT_UNDERSTOOD):
            problems.append(f"{result.image}: reason {result.reason!r}")
        elif levels is not None:
            expected = {
                "CRITICAL": levels[5],
                "HIGH": levels[4],
                "MEDIUM": levels[3],
                "LOW": levels[2] + levels[1],
            }
            if result.vulnerabilities.model_dump() != expected:
                problems.append(f"{result.image}: {result.vulnerabilities}, expected {expected}")
    assert not problems, "\n".join(problems)
    readme = next(r for r in results if r.image == "docker.io/heldout/readme:1")
    assert readme.digest == D4  # RepoDigests, never the config id of the file names
    # Nothing failed is cached; the clean one is.
    store = StoreRequest(instance_id="heldout-store", status="completed", finished_at=NOW, results=results)
    store_results(clients(settings), settings, store)
    lookup = CacheLookupRequest(images=[ImageToCheck(image=r.image) for r in results], cache_hours=24, now=NOW)
    hits = {r.image: h.hit for r, h in zip(results, lookup_cache(clients(settings), settings, lookup), strict=True)}
    assert [i for i, hit in hits.items() if hit and CASES[i][1] == "failed"] == []
    assert hits["docker.io/heldout/clean:1"]


def test_invocation_defaults_and_scan_timeout(heldout: ScanHarness, tmp_path: Path) -> None:
    image = "docker.io/heldout/readme:1"
    run = _run(heldout, tmp_path, {image: CASES[image][0]}, SCAN_TIMEOUT_PER_IMAGE="600")
    (argv,) = [json.loads(line) for line in (tmp_path / "heldout-record.txt").read_text().splitlines()]
    assert run.returncode == 0, run.stderr
    options = dict(zip(argv[:-2:2], argv[1:-2:2], strict=True))
    assert argv[-2:] == ["image", image]
    assert options["--scan-timeout"] == "300s"  # 600 s per image less the report fetch's reserve
    assert options["--report-format"] == "sarif,json"
    assert options["--mode"] == "get-report"
    assert set(json.loads(run.blob(0, "status.json"))["files"]) >= {"report.sarif.json", "report.json", "scan.log"}


@pytest.mark.parametrize(
    "case",
    [
        ("scan-only", 0, "uploaded"),
        ("inventory-only", 0, "inventory"),
        ("evaluate-policy", 42, "denied"),
        ("evaluate-policy", 43, "completed"),
        ("evaluate-policy", 0, "completed"),
        ("get-report", 40, "failed"),
    ],
)
def test_modes(heldout: ScanHarness, tmp_path: Path, azurite: Azurite, case: tuple[str, int, str]) -> None:
    mode, exit_code, status = case
    image = "docker.io/heldout/mode:1"
    spec = {
        "findings": [{"qid": 5, "severity": 5}],
        "exit_code": exit_code,
        "repo_digests": [f"docker.io/heldout/mode@{D4}"],
    }
    run = _run(heldout, tmp_path, {image: spec}, QSCANNER_MODE=mode, POLICY_TAGS="prod")
    (result,), _ = _collect(azurite, run, [image], mode)
    assert result.status == status, result.reason
    assert result.digest == D4
    if mode in ("scan-only", "inventory-only"):
        assert "report.sarif.json" not in run.blobs.get("0/status.json", b"").decode()


@pytest.mark.parametrize("version", ["v4.8.0-2", "4.8.0-2", "V4.8.0-2"])
def test_version_with_or_without_v_and_no_download_without_a_sha256(
    heldout: ScanHarness, tmp_path: Path, version: str
) -> None:
    image = "docker.io/heldout/readme:1"
    run = heldout.run(
        [image],
        qscanner_on_path=False,
        env={"QSCANNER_VERSION": version, "QSCANNER_SHA256": None, "QSCANNER_DOWNLOAD_URL": None},
    )
    assert run.returncode == 3, run.stderr
    status = json.loads(run.blob(0, "status.json"))
    assert status["result"] == "error"
    assert "QSCANNER_SHA256 is not set" in status["error"]
    assert "https://www.qualys.com/qscanner/download/4.8.0-2/download_qscanner.sh" in status["error"]
