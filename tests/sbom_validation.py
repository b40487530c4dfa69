"""Test helpers: an SBOM checked by its format's own validator (spdx-tools; cyclonedx-python-lib for CycloneDX)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

CYCLONEDX_VERSIONS = {f"1.{minor}": getattr(SchemaVersion, f"V1_{minor}") for minor in range(2, 7)}


def spdx_problems(data: bytes) -> list[str]:
    """spdx-tools' validation messages for an SPDX JSON document (parsed from a `.spdx.json` file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sbom.spdx.json"
        path.write_bytes(data)
        document = parse_file(str(path))
    return [message.validation_message for message in validate_full_spdx_document(document)]


def cyclonedx_problems(data: bytes) -> list[str]:
    """cyclonedx-python-lib's strict JSON schema validation of a CycloneDX JSON document, at its own specVersion."""
    version = CYCLONEDX_VERSIONS[json.loads(data)["specVersion"]]
    error = JsonStrictValidator(version).validate_str(data.decode("utf-8"))
    return [] if error is None else [str(error)]
