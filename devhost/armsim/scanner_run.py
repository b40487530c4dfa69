"""What the fake scanner container does with its environment: a timed plan per image and the blobs it uploads."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.images import InvalidImageRef, parse_image_ref
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


def canonical_ref(ref: str) -> str:
    """The canonical form of an image reference as the app computes it; unparseable text stays as written."""
    try:
        return parse_image_ref(ref.strip()).canonical
    except InvalidImageRef:
        return ref.strip()


def fake_digest(canonical: str) -> str:
    """A deterministic stand-in for an image's manifest digest."""
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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


@dataclass(frozen=True)
class ScanPlan:
    """The whole container run: images in turn, then the container's own exit."""

    images: list[ImageOutcome]
    finished_at: datetime | None
    exit_code: int | None


def behaviour_for(scenario: Scenario, image: str) -> ScanBehaviour:
    """The scenario's behaviour for `image`, matched by canonical reference, else `default`, else a clean ok."""
    wanted = canonical_ref(image)
    for key, behaviour in scenario.scans.items():
        if key != DEFAULT_SCAN_KEY and canonical_ref(key) == wanted:
            return behaviour
    return scenario.scans.get(DEFAULT_SCAN_KEY, ScanBehaviour())


def plan_scan(scenario: Scenario, images: list[str], timeout_per_image_s: float | None, start: datetime) -> ScanPlan:
    """Lay out the images' scans in time from `start`, as the scanner script would run them."""
    outcomes: list[ImageOutcome] = []
    cursor: datetime | None = start
    for index, image in enumerate(images):
        if cursor is None:
            break  # an earlier image hangs forever: the rest never start
        behaviour = behaviour_for(scenario, image)
        duration: float | None = None if behaviour.result == "hang" else behaviour.duration_s
        result: str = behaviour.result
        exit_code = EXIT_CODES.get(result, behaviour.exit_code)
        if timeout_per_image_s is not None and (duration is None or duration > timeout_per_image_s):
            duration, result, exit_code = timeout_per_image_s, "timeout", TIMEOUT_EXIT_CODE
        finished = None if duration is None else cursor + timedelta(seconds=duration)
        digest = (behaviour.digest or fake_digest(canonical_ref(image))) if result in REPORTED_RESULTS else None
        outcomes.append(ImageOutcome(index, image, result, exit_code, cursor, finished, behaviour, digest))
        cursor = finished
    all_reported = all(o.result in REPORTED_RESULTS for o in outcomes)
    finished_at = cursor if len(outcomes) == len(images) else None
    return ScanPlan(outcomes, finished_at, None if finished_at is None else (0 if all_reported else 1))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_document(outcome: ImageOutcome) -> dict[str, Any]:
    """The `status.json` the scanner uploads for one image."""
    assert outcome.finished_at is not None
    document: dict[str, Any] = {
        "image": outcome.image,
        "index": outcome.index,
        "exit_code": outcome.exit_code,
        "result": outcome.result,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
    }
    if outcome.digest:
        document["digest"] = outcome.digest  # scan.sh writes a digest only when a report named one
    return document


def report_document(outcome: ImageOutcome) -> dict[str, Any]:
    """A QScanner-shaped `report.json` with the scenario's number of findings per severity."""
    findings: list[dict[str, Any]] = []
    qid = 100000
    for severity in SEVERITIES:
        for n in range(outcome.behaviour.vulnerabilities.get(severity, 0)):
            qid += 1
            findings.append(
                {
                    "qid": qid,
                    "title": f"Simulated {severity.lower()} finding {n + 1}",
                    "severity": severity,
                    "cveIds": [f"CVE-2026-{qid % 100000:05d}"],
                    "package": {"name": f"pkg-{severity.lower()}-{n + 1}", "version": "1.0.0", "fixedVersion": "1.0.1"},
                }
            )
    return {"image": {"name": outcome.image, "digest": outcome.digest}, "vulnerabilities": findings}


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
    """(blob name, body, content type) of a finished image, in scan.sh's order: report, log, then status last."""
    base = f"{prefix.strip('/')}/{outcome.index}" if prefix.strip("/") else str(outcome.index)
    blobs: list[tuple[str, bytes, str]] = []
    if outcome.result in REPORTED_RESULTS:
        blobs.append((f"{base}/report.json", json.dumps(report_document(outcome)).encode(), "application/json"))
    log = "\n".join(image_log_lines(outcome, filler_lines, finished=True)) + "\n"
    blobs.append((f"{base}/scan.log", log.encode(), "text/plain; charset=utf-8"))
    blobs.append((f"{base}/status.json", json.dumps(status_document(outcome)).encode(), "application/json"))
    return blobs
