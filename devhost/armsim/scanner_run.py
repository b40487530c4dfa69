"""What the fake scanner container does with its environment: a timed plan per image and the blobs it uploads.

It uploads what scanner/scan.sh uploads (docs/scanner.md, "Results layout"): QScanner's files under the contract's
names, in the shapes of devhost/qscanner_output.py (shared with the fake `qscanner` of tests/scanner), or a scenario's
files verbatim; then `scan.log` and `status.json` last.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.images import InvalidImageRef, parse_image_ref
from devhost import qscanner_output as q
from devhost.armsim.scenario import DEFAULT_SCAN_KEY, SEVERITIES, ScanBehaviour, Scenario

ENV_SCAN_IMAGES = "SCAN_IMAGES"
ENV_RESULTS_SAS_URL = "RESULTS_SAS_URL"
ENV_RESULTS_PREFIX = "RESULTS_PREFIX"
ENV_SCAN_TIMEOUT_PER_IMAGE = "SCAN_TIMEOUT_PER_IMAGE"
EXIT_CODES = {"ok": 0, "deny": 42, "audit": 43}
REPORTED_RESULTS = frozenset(EXIT_CODES)
TIMEOUT_EXIT_CODE = 124
UPLOAD_TIMEOUT_S = 10.0
BLOB_API_VERSION = "2021-08-06"
MAX_LOG_BYTES = 4 * 1024 * 1024  # scan.sh keeps the last 4 MiB of QScanner's log
# QScanner's output kind -> the blob name scan.sh uploads it as (docs/scanner.md); gitlab and table are never uploaded.
CONTRACT_BLOBS = {
    "sarif": "report.sarif.json",
    "json": "report.json",
    "scanresult": "scanresult.json",
    "spdx": "sbom.spdx.json",
    "cyclonedx": "sbom.cyclonedx.json",
}


@dataclass(frozen=True)
class ScannerConfig:
    """The scanner settings the group's environment carries (scan.sh's defaults when absent)."""

    mode: str = "get-report"
    report_formats: tuple[str, ...] = ("sarif", "json")
    sbom_format: str = "spdx"
    scan_types: tuple[str, ...] = ("os", "sca", "secret")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScannerConfig:
        def listed(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = env.get(name, "").strip()
            return tuple(raw.split(",")) if raw else default

        return cls(
            mode=env.get("QSCANNER_MODE", "").strip() or cls.mode,
            report_formats=listed("QSCANNER_REPORT_FORMATS", cls.report_formats),
            sbom_format=env.get("QSCANNER_SBOM_FORMAT", "").strip() or cls.sbom_format,
            scan_types=listed("SCAN_TYPES", cls.scan_types),
        )

    @property
    def inventory_formats(self) -> tuple[str, ...]:
        return ("json",) if self.sbom_format == "none" else ("json", self.sbom_format)


def canonical_ref(ref: str) -> str:
    """The canonical form of an image reference as the app computes it; unparseable text stays as written."""
    try:
        return parse_image_ref(ref.strip()).canonical
    except InvalidImageRef:
        return ref.strip()


def fake_digest(canonical: str) -> str:
    """A deterministic stand-in for an image's manifest digest."""
    return q.manifest_digest(canonical)


@dataclass(frozen=True)
class ImageOutcome:
    """One image's scan as the fake scanner will perform it."""

    index: int
    image: str
    result: str
    exit_code: int | None
    started_at: datetime
    finished_at: datetime | None  # None: hangs forever
    behaviour: ScanBehaviour
    digest: str | None
    config: ScannerConfig = field(default_factory=ScannerConfig)


@dataclass(frozen=True)
class ScanPlan:
    """The whole container run: images in turn, then the container's own exit."""

    images: list[ImageOutcome]
    finished_at: datetime | None
    exit_code: int | None


def behaviour_for(scenario: Scenario, image: str, scans_before: int = 0) -> ScanBehaviour:
    """The scenario's behaviour for `image`, matched by canonical reference, else `default`, else a clean ok; for
    an entry with successive `results`, the one of the scan after `scans_before` earlier scans of the image.
    """
    wanted = canonical_ref(image)
    for key, behaviour in scenario.scans.items():
        if key != DEFAULT_SCAN_KEY and canonical_ref(key) == wanted:
            return behaviour.nth(scans_before)
    return scenario.scans.get(DEFAULT_SCAN_KEY, ScanBehaviour()).nth(scans_before)


def plan_scan(
    scenario: Scenario,
    images: list[str],
    timeout_per_image_s: float | None,
    start: datetime,
    *,
    env: Mapping[str, str] | None = None,
    scans_before: Mapping[str, int] | None = None,
) -> ScanPlan:
    """Lay out the images' scans in time from `start`, as the scanner script would run them (with the group's env);
    `scans_before`: per canonical image, how many scans of it ran before (successive `results`).
    """
    config = ScannerConfig.from_env(env or {})
    outcomes: list[ImageOutcome] = []
    cursor: datetime | None = start
    for index, image in enumerate(images):
        if cursor is None:
            break  # an earlier image hangs forever: the rest never start
        behaviour = behaviour_for(scenario, image, (scans_before or {}).get(canonical_ref(image), 0))
        duration: float | None = None if behaviour.result == "hang" else behaviour.duration_s
        result: str = behaviour.result
        exit_code = EXIT_CODES.get(result, behaviour.exit_code)
        if timeout_per_image_s is not None and (duration is None or duration > timeout_per_image_s):
            duration, result, exit_code = timeout_per_image_s, "timeout", TIMEOUT_EXIT_CODE
        finished = None if duration is None else cursor + timedelta(seconds=duration)
        pinned = q.pinned_digest(canonical_ref(image))  # QScanner reports the digest a `name@digest` names
        digest = (
            (behaviour.digest or pinned or fake_digest(canonical_ref(image))) if result in REPORTED_RESULTS else None
        )
        outcomes.append(ImageOutcome(index, image, result, exit_code, cursor, finished, behaviour, digest, config))
        cursor = finished
    all_reported = all(o.result in REPORTED_RESULTS for o in outcomes)
    finished_at = cursor if len(outcomes) == len(images) else None
    return ScanPlan(outcomes, finished_at, None if finished_at is None else (0 if all_reported else 1))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_document(outcome: ImageOutcome, files: list[str] | None = None) -> dict[str, Any]:
    """The `status.json` the scanner uploads for one image (scan.sh derives no digest: always "")."""
    assert outcome.finished_at is not None
    return {
        "image": outcome.image,
        "index": outcome.index,
        "exit_code": outcome.exit_code,
        "result": outcome.result,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "digest": "",
        "mode": outcome.config.mode,
        "files": list(files or []),
    }


def image_scan(outcome: ImageOutcome) -> q.ImageScan:
    """The image as the simulated QScanner saw it: the scenario's counts as QIDs of the matching Qualys level."""
    counts = {
        q.APP_SEVERITY_TO_QUALYS[severity]: outcome.behaviour.vulnerabilities.get(severity, 0)
        for severity in SEVERITIES
    }
    findings = q.findings_from_counts(counts, seed=outcome.image)
    return q.ImageScan(ref=outcome.image, findings=findings, repo_digest=outcome.digest or "")


def report_document(outcome: ImageOutcome) -> dict[str, Any]:
    """The SARIF report QScanner would write for this outcome."""
    return q.sarif_document(image_scan(outcome))


def scanner_outputs(outcome: ImageOutcome) -> tuple[dict[str, bytes], bytes]:
    """(contract blob name -> content, QScanner's log) of a finished image."""
    config = outcome.config
    verbatim = outcome.behaviour.file_contents
    reporting = config.mode in q.REPORTING_MODES
    if outcome.behaviour.files is not None:
        if outcome.result == "timeout":
            return {}, b""
        kept = [kind for kind in CONTRACT_BLOBS if kind in verbatim and (reporting or kind == "scanresult")]
        blobs = {CONTRACT_BLOBS[kind]: verbatim[kind] for kind in kept}
        if "log" in verbatim:
            return blobs, verbatim["log"]
        lines = q.log_lines(q.ImageScan(ref=outcome.image), mode=config.mode, report_received=False)  # no counts
        return blobs, ("\n".join(lines) + "\n").encode()
    scan = image_scan(outcome)
    if outcome.result not in REPORTED_RESULTS:
        return {}, ("\n".join(q.log_lines(scan, mode=config.mode, report_received=False)) + "\n").encode()
    files = q.output_files(
        scan,
        mode=config.mode,
        report_formats=config.report_formats,
        inventory_formats=config.inventory_formats,
        scan_types=config.scan_types,
    )
    by_name = {name: kind for kind, name in q.file_names(scan.config_id).items()}
    written = {by_name[name]: content for name, content in files.items()}
    blobs = {blob: written[kind] for kind, blob in CONTRACT_BLOBS.items() if kind in written}  # scan.sh's order
    return blobs, ("\n".join(q.log_lines(scan, mode=config.mode)) + "\n").encode()


def image_log_lines(outcome: ImageOutcome, filler_lines: int, *, finished: bool) -> list[str]:
    """The scanner's log lines for one image (only the start while it is still being scanned)."""
    lines = [f"{_iso(outcome.started_at)} scanning image {outcome.index}: {outcome.image}"]
    lines += [f"  progress {n + 1}/{filler_lines} for image {outcome.index}" for n in range(filler_lines)]
    if finished and outcome.finished_at is not None:
        lines.append(
            f"{_iso(outcome.finished_at)} image {outcome.index} result={outcome.result} exit_code={outcome.exit_code}"
        )
    return lines


def blob_url(sas_url: str, blob_name: str) -> str:
    """The URL of `blob_name` inside the container that the container SAS URL `sas_url` points at."""
    parts = urllib.parse.urlsplit(sas_url)
    path = parts.path.rstrip("/") + "/" + urllib.parse.quote(blob_name)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def upload_blob(sas_url: str, blob_name: str, body: bytes, content_type: str) -> bool:
    """PUT one block blob through the SAS URL, as `curl -X PUT -H 'x-ms-blob-type: BlockBlob'` would."""
    request = urllib.request.Request(
        blob_url(sas_url, blob_name),
        data=body,
        method="PUT",
        headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": BLOB_API_VERSION, "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def image_blobs(outcome: ImageOutcome, prefix: str, filler_lines: int) -> list[tuple[str, bytes, str]]:
    """(blob name, body, content type) of a finished image, in scan.sh's order: QScanner's files, log, status last."""
    base = f"{prefix.strip('/')}/{outcome.index}" if prefix.strip("/") else str(outcome.index)
    outputs, log = scanner_outputs(outcome)
    blobs = [(f"{base}/{name}", body, "application/json") for name, body in outputs.items()]
    if outcome.behaviour.files is None:  # a generated log gets the scenario's filler lines (a verbatim one stays so)
        log += "".join(f"  progress {n + 1}/{filler_lines}\n" for n in range(filler_lines)).encode()
    if len(log) > MAX_LOG_BYTES:
        log = f"[qscan] log truncated: last {MAX_LOG_BYTES} of {len(log)} bytes\n".encode() + log[-MAX_LOG_BYTES:]
    blobs.append((f"{base}/scan.log", log, "text/plain; charset=utf-8"))
    files = [*outputs, "scan.log"]
    blobs.append((f"{base}/status.json", json.dumps(status_document(outcome, files)).encode(), "application/json"))
    return blobs
