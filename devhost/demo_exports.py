"""`make demo`'s exports: each scanned image's report and SBOM fetched through the app's export API into OUT/exports/.

The files are what `GET /api/images/{key}/report` and `/sbom` answer (docs/results.md, "Exports"), so a run shows the
SARIF and SBOMs a code-scanning or SBOM tool would get; `index.json` lists every request and its HTTP status.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.exports import EXPORT_FORMATS
from core.naming import image_key

EXPORTS_DIR = "exports"
INDEX_FILE = "index.json"
TIMEOUT_S = 30.0
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def save_exports(base_url: str, summary: Mapping[str, Any], directory: Path) -> int:
    """Fetch every export of each image that has a stored report; write the 200 answers and `index.json`."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    index: list[dict[str, Any]] = []
    saved = 0
    for entry in summary["images"]:
        if not entry.get("report"):
            continue
        key = image_key(entry["image"])
        stem = _UNSAFE_FILE_CHARS.sub("_", entry["image"])
        for kind, formats in EXPORT_FORMATS.items():
            for name, fmt in formats.items():
                status, body = _get(f"{base_url}/api/images/{key}/{kind}?format={name}")
                row: dict[str, Any] = {"image": entry["image"], "kind": kind, "format": name, "status": status}
                if status == 200:
                    row["file"] = f"{stem}.{fmt.blob}"
                    (directory / row["file"]).write_bytes(body)
                    saved += 1
                else:
                    row["error"] = json.loads(body).get("error") if body.startswith(b"{") else None
                index.append(row)
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return saved
