"""What Qualys QScanner writes for one image, as plain data: the one place the stand-ins take file shapes from.

Used by the fake `qscanner` of tests/scanner (run through scanner/scan.sh) and by the ARM simulator's scanner
(devhost/armsim/scanner_run.py), so the two cannot drift. Standard library only: the fake runs it as a script.

Sources (see ../shared/reference/qscanner.md, section "Reports"):
- QScanner v4.8.0 README (Qualys): file names `<image_id>-Report.sarif.json`, `<image_id>-Report.json`,
  `<image_id>-ScanResult.json`, `<image_id>-ScanResult.spdx.json`; default `--report-format table,sarif`; modes
  `inventory-only`/`scan-only` write no vulnerability report; the log lines `Image source: remote`, `Vulnerability
  report received`, `N vulnerabilities found!` and `Severity K: n` for K = 5..1, counted per QID; exit codes.
- SARIF as the Qualys integrations read it (nelssec/qualys-jenkins `SarifParser.java`, nelssec/qualys-ado
  `QScannerRunner.ts`): rules with `id` = QID, `properties.severity` 1-5, `properties["cve-ids"]`,
  `properties.qds`; results with `ruleId`, `level`, `message.text`, `properties.QID`,
  `properties.vulnerableSoftware[]{name, installedVersion, fixedVersion, layerSHA}`; `runs[].properties` with
  `imageID`, `imageDigest`, `repoTags`.
- `-ScanResult.json`: PascalCase keys (`SchemaVersion`, `QScannerVersion`, `ScansPerformed[]`,
  `Metadata.TargetMetadata.ImageMetadata.{ImageID, RepoTags, RepoDigests}`, `OSResults`, `SCAResults`,
  `SecretResults`); a scan of `name@digest` has no RepoTags.
- NOT published, so invented here and marked as such: the schema of `-Report.json` (the README only says "detailed
  JSON report which includes inventory"), the CycloneDX file name, and the exact wording of non-counting log lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

QSCANNER_VERSION = "4.8.0-2"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MODES = ("get-report", "scan-only", "inventory-only", "evaluate-policy")
REPORTING_MODES = frozenset({"get-report", "evaluate-policy"})  # the only modes that fetch a vulnerability report
REPORT_FORMATS = ("json", "sarif", "table", "gitlab")
INVENTORY_FORMATS = ("json", "table", "spdx", "cyclonedx")
DEFAULT_REPORT_FORMATS = ("table", "sarif")  # README: the ScanOptions sample
DEFAULT_INVENTORY_FORMATS = ("json",)
QUALYS_SEVERITIES = (5, 4, 3, 2, 1)  # Urgent, Critical, Serious, Medium, Minimal
SARIF_LEVELS = {5: "error", 4: "error", 3: "warning", 2: "note", 1: "note"}
# How the app's severities map onto Qualys levels when a stand-in builds findings from a scenario's counts.
APP_SEVERITY_TO_QUALYS = {"CRITICAL": 5, "HIGH": 4, "MEDIUM": 3, "LOW": 2}
# Exit codes from the README's table.
EXIT_OK = 0
EXIT_GENERIC = 1
EXIT_INVALID_PARAMETER = 2
EXIT_IMAGE_FAILURE = 6
EXIT_REPORT_FAILED = 40
EXIT_POLICY_DENY = 42
EXIT_POLICY_AUDIT = 43


@dataclass(frozen=True)
class Package:
    """One vulnerable package row of a finding."""

    name: str
    installed_version: str
    fixed_version: str
    layer_sha: str = ""


@dataclass(frozen=True)
class Finding:
    """One QID: QScanner's log counts findings per QID, however many packages it lists."""

    qid: int
    severity: int  # Qualys 1-5
    title: str
    cves: tuple[str, ...] = ()
    packages: tuple[Package, ...] = ()
    qds: int | None = None


@dataclass(frozen=True)
class ImageScan:
    """One image as QScanner saw it: the reference asked for, its digests and what was found."""

    ref: str
    findings: tuple[Finding, ...] = ()
    repo_digest: str = ""
    image_id: str = ""
    os_name: str = "debian"
    os_version: str = "12"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config_id(self) -> str:
        """The image config id that names QScanner's files (never the repo digest)."""
        return self.image_id or config_digest(self.ref)

    @property
    def digest(self) -> str:
        """The manifest (repo) digest: the pinned one of `name@digest`, else a deterministic stand-in."""
        return self.repo_digest or pinned_digest(self.ref) or manifest_digest(self.ref)


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_digest(ref: str) -> str:
    """A deterministic stand-in for the manifest digest of `ref` (what RepoDigests names)."""
    return _sha(ref)


def config_digest(ref: str) -> str:
    """A deterministic stand-in for the image config id, deliberately different from the manifest digest."""
    return _sha("config:" + ref)


def pinned_digest(ref: str) -> str:
    """The digest of a `name@sha256:...` reference, else ''."""
    _, at, digest = ref.rpartition("@")
    return digest if at and digest.startswith("sha256:") else ""


def repository(ref: str) -> str:
    """The reference without its digest or tag."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def file_names(image_id: str) -> dict[str, str]:
    """Each output kind -> the file QScanner writes for it in `--output-dir` (README; CycloneDX name unconfirmed)."""
    stem = image_id.removeprefix("sha256:")
    return {
        "sarif": f"{stem}-Report.sarif.json",
        "json": f"{stem}-Report.json",
        "gitlab": f"{stem}-gitlab_vuln_report.json",
        "scanresult": f"{stem}-ScanResult.json",
        "spdx": f"{stem}-ScanResult.spdx.json",
        "cyclonedx": f"{stem}-ScanResult.cyclonedx.json",
    }


def findings_from_counts(counts: Mapping[int, int], *, seed: str = "", qid_base: int = 100000) -> tuple[Finding, ...]:
    """`counts` QIDs per Qualys level (5..1); the first finding lists two packages (one QID, two rows)."""
    findings: list[Finding] = []
    qid = qid_base
    for severity in QUALYS_SEVERITIES:
        for n in range(counts.get(severity, 0)):
            qid += 1
            packages = [Package(f"pkg-s{severity}-{n + 1}", "1.0.0", "1.0.1", _sha(f"layer:{seed}:{qid}"))]
            if not findings:  # as QID 6019286 in the README: libc-bin and libc6, counted once
                packages.append(Package(f"pkg-s{severity}-{n + 1}-bin", "1.0.0", "1.0.1", packages[0].layer_sha))
            findings.append(
                Finding(
                    qid=qid,
                    severity=severity,
                    title=f"Simulated severity {severity} finding {n + 1}",
                    cves=(f"CVE-2026-{qid % 100000:05d}",),
                    packages=tuple(packages),
                    qds=min(100, 20 * severity - 5),
                )
            )
    return tuple(findings)


def counts_per_severity(findings: Sequence[Finding]) -> dict[int, int]:
    """QIDs per Qualys level 5..1, as QScanner's log states them."""
    counts = dict.fromkeys(QUALYS_SEVERITIES, 0)
    for finding in {f.qid: f for f in findings}.values():
        counts[finding.severity] += 1
    return counts


def sarif_document(scan: ImageScan) -> dict[str, Any]:
    """`<image_id>-Report.sarif.json` in the shape the Qualys integrations read (see the module docstring)."""
    rules = [
        {
            "id": str(f.qid),
            "name": f"QID{f.qid}",
            "shortDescription": {"text": f.title},
            "fullDescription": {"text": f.title},
            "properties": {"severity": f.severity, "cve-ids": list(f.cves), "qds": f.qds},
        }
        for f in scan.findings
    ]
    results = [
        {
            "ruleId": str(f.qid),
            "level": SARIF_LEVELS[f.severity],
            "message": {"text": f"{f.title} in {', '.join(p.name for p in f.packages) or 'the image'}"},
            "properties": {
                "QID": f.qid,
                "vulnerableSoftware": [
                    {
                        "name": p.name,
                        "installedVersion": p.installed_version,
                        "fixedVersion": p.fixed_version,
                        "layerSHA": p.layer_sha,
                    }
                    for p in f.packages
                ],
            },
        }
        for f in scan.findings
    ]
    tags = [] if pinned_digest(scan.ref) else [scan.ref.split("@", 1)[0]]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "QScanner", "version": QSCANNER_VERSION, "rules": rules}},
                "results": results,
                "properties": {
                    "imageID": scan.config_id,
                    "imageDigest": scan.digest,
                    "repoTags": tags,
                    "os": f"{scan.os_name} {scan.os_version}",
                },
            }
        ],
    }


def scan_result_document(scan: ImageScan, scan_types: Sequence[str]) -> dict[str, Any]:
    """`<image_id>-ScanResult.json` (inventory), PascalCase as the README shows; no RepoTags for `name@digest`."""
    tags = [] if pinned_digest(scan.ref) else [scan.ref.split("@", 1)[0]]
    packages = sorted({(p.name, p.installed_version) for f in scan.findings for p in f.packages})
    return {
        "SchemaVersion": 2,
        "QScannerVersion": QSCANNER_VERSION,
        "ScansPerformed": [{"ScanType": kind, "Status": "Success"} for kind in scan_types],
        "Metadata": {
            "TargetMetadata": {
                "ImageMetadata": {
                    "ImageID": scan.config_id,
                    "RepoTags": tags,
                    "RepoDigests": [f"{repository(scan.ref)}@{scan.digest}"],
                }
            }
        },
        "OSResults": {
            "OS": {"Family": scan.os_name, "Name": scan.os_version},
            "Packages": [{"Name": name, "Version": version} for name, version in packages],
        },
        "SCAResults": {"Packages": []},
        "SecretResults": {"Secrets": []},
    }


def report_json_document(scan: ImageScan, scan_types: Sequence[str]) -> dict[str, Any]:
    """`<image_id>-Report.json`: UNCONFIRMED shape (Qualys publishes no schema); the inventory plus findings."""
    document = scan_result_document(scan, scan_types)
    document["Vulnerabilities"] = [
        {
            "QID": f.qid,
            "Title": f.title,
            "Severity": f.severity,
            "QDS": f.qds,
            "CVEIDs": list(f.cves),
            "VulnerableSoftware": [
                {"Name": p.name, "InstalledVersion": p.installed_version, "FixedVersion": p.fixed_version}
                for p in f.packages
            ],
        }
        for f in scan.findings
    ]
    return document


def spdx_document(scan: ImageScan) -> dict[str, Any]:
    """`-ScanResult.spdx.json`: a minimal SPDX 2.3 JSON SBOM that spdx-tools validates (the document DESCRIBES the
    image, which CONTAINS each package), as an SBOM generator writes it (SPDX 2.3, clause 11: relationships).
    """
    packages = sorted({(p.name, p.installed_version) for f in scan.findings for p in f.packages})
    image = {"name": scan.ref, "SPDXID": "SPDXRef-Image", "downloadLocation": "NOASSERTION", "filesAnalyzed": False}
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": scan.ref,
        "documentNamespace": f"https://qscanner.invalid/{scan.config_id.removeprefix('sha256:')}",
        "creationInfo": {"creators": [f"Tool: QScanner-{QSCANNER_VERSION}"], "created": "2026-01-01T00:00:00Z"},
        "packages": [
            image,
            *(
                {
                    "name": name,
                    "SPDXID": f"SPDXRef-Package-{n}",
                    "versionInfo": version,
                    "downloadLocation": "NOASSERTION",
                    "filesAnalyzed": False,
                }
                for n, (name, version) in enumerate(packages)
            ),
        ],
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": "SPDXRef-Image",
            },
            *(
                {
                    "spdxElementId": "SPDXRef-Image",
                    "relationshipType": "CONTAINS",
                    "relatedSpdxElement": f"SPDXRef-Package-{n}",
                }
                for n in range(len(packages))
            ),
        ],
    }


def cyclonedx_document(scan: ImageScan) -> dict[str, Any]:
    """The CycloneDX SBOM (`--format cyclonedx`): a minimal CycloneDX 1.5 JSON document."""
    packages = sorted({(p.name, p.installed_version) for f in scan.findings for p in f.packages})
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": scan.ref}},
        "components": [{"type": "library", "name": name, "version": version} for name, version in packages],
    }


def output_files(
    scan: ImageScan,
    *,
    mode: str,
    report_formats: Sequence[str],
    inventory_formats: Sequence[str],
    scan_types: Sequence[str],
) -> dict[str, bytes]:
    """File name -> content of everything QScanner writes for one image in `--output-dir`.

    The inventory (`--format`) is written in every mode; the vulnerability report (`--report-format`) only in
    get-report and evaluate-policy mode. `table` formats go to the log, not to a file.
    """
    names = file_names(scan.config_id)
    files: dict[str, bytes] = {}

    def put(kind: str, document: dict[str, Any]) -> None:
        files[names[kind]] = (json.dumps(document, indent=2) + "\n").encode("utf-8")

    if "json" in inventory_formats:
        put("scanresult", scan_result_document(scan, scan_types))
    if "spdx" in inventory_formats:
        put("spdx", spdx_document(scan))
    if "cyclonedx" in inventory_formats:
        put("cyclonedx", cyclonedx_document(scan))
    if mode in REPORTING_MODES:
        if "sarif" in report_formats:
            put("sarif", sarif_document(scan))
        if "json" in report_formats:
            put("json", report_json_document(scan, scan_types))
        if "gitlab" in report_formats:
            put("gitlab", {"version": "15.0.0", "vulnerabilities": [], "scan": {"type": "container_scanning"}})
    return files


def log_lines(scan: ImageScan, *, mode: str, report_received: bool = True) -> list[str]:
    """The lines of QScanner's log that state facts the app reads (the counting lines: README wording)."""
    lines = [
        f"QScanner version {QSCANNER_VERSION}",
        f"Scanning image {scan.ref} (mode {mode})",
        "Image source: remote",
        f"Image ID: {scan.config_id}",
        f"Repo digest: {scan.digest}",
    ]
    if mode in REPORTING_MODES and report_received:
        counts = counts_per_severity(scan.findings)
        lines.append("Vulnerability report received")
        lines.append(f"{sum(counts.values())} vulnerabilities found!")
        lines += [f"Severity {level}: {counts[level]}" for level in QUALYS_SEVERITIES]
    return lines
