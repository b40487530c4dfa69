"""QScanner's inventory (`<image_id>-ScanResult.json`, uploaded as `scanresult.json`): the image's repo digest.

The cache and the API key an image by the repo digest the scan saw: `Metadata.TargetMetadata.ImageMetadata.
RepoDigests` (entries `repository@sha256:...`; the ADO integration types it as `Metadata.Target.RepoDigests`, read
too). Never `ImageID` or the `<image_id>` of a file name: that is the config digest, not the manifest's.

Which entry: only those whose repository is the scanned image's (after normalising, so `nginx@...` matches
`docker.io/library/nginx`). Among them the image's own pinned digest, else the digest resolved before the scan,
else the one distinct digest; several different digests and none of those is ambiguous, and no digest is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.images import InvalidImageRef, parse_image_ref
from core.report import load_json_object

SCANRESULT_BLOB = "scanresult.json"
MAX_SCANRESULT_BYTES = 64 * 1024 * 1024
MAX_REPO_DIGESTS = 100


@dataclass(frozen=True)
class ScanDigest:
    """The repo digest chosen from the inventory (None when none fits) and a note when that is worth saying."""

    digest: str | None
    note: str | None = None


def _get(node: object, *path: str) -> object:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def repo_digests(document: dict[str, Any]) -> list[str]:
    """The `RepoDigests` strings of a ScanResult document (bounded), [] when absent."""
    for path in (("Metadata", "TargetMetadata", "ImageMetadata"), ("Metadata", "Target")):
        value = _get(document, *path, "RepoDigests")
        if isinstance(value, list):
            return [item for item in value[:MAX_REPO_DIGESTS] if isinstance(item, str) and len(item) <= 1100]
    return []


def choose_digest(entries: list[str], image: str, resolved: str | None) -> ScanDigest:
    """The repo digest of `image` among `entries` (see the module docstring)."""
    try:
        target = parse_image_ref(image)
    except InvalidImageRef:
        return ScanDigest(None, "the image reference cannot be matched against RepoDigests")
    matching: list[str] = []
    for entry in entries:
        try:
            ref = parse_image_ref(entry)
        except InvalidImageRef:
            continue
        if ref.name == target.name and ref.digest and ref.digest not in matching:
            matching.append(ref.digest)
    for preferred in (target.digest, resolved):
        if preferred and preferred in matching:
            return ScanDigest(preferred)
    if len(matching) == 1:
        note = f"the scan saw digest {matching[0]}, not the {resolved} resolved before it" if resolved else None
        return ScanDigest(matching[0], note)
    if matching:
        return ScanDigest(None, f"RepoDigests holds {len(matching)} digests for {target.name}; none was taken")
    return ScanDigest(None)


def scan_digest(raw: bytes, image: str, resolved: str | None) -> ScanDigest:
    """The repo digest from a `scanresult.json` upload; `InvalidUpload` when it is oversize or not a JSON object."""
    document = load_json_object(raw, SCANRESULT_BLOB, MAX_SCANRESULT_BYTES)
    return choose_digest(repo_digests(document), image, resolved)
