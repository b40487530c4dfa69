"""Deterministic names: orchestration instance ids, scanner group names, their uploads containers, image keys."""

from __future__ import annotations

import hashlib

SCANNER_GROUP_PREFIX = "qscan-"
SCANNER_GROUP_NAME_PATTERN = r"^qscan-[a-z0-9-]{1,57}$"
"""What an activity accepts as a scanner group name (ACI's rule, with the app's prefix)."""
EVENT_INSTANCE_PREFIX = "scan-"
RESCAN_INSTANCE_PREFIX = "rescan-"
UPLOADS_CONTAINER_HASH_CHARS = 24
MAX_CONTAINER_NAME_CHARS = 63
MAX_UPLOADS_CONTAINER_PREFIX_CHARS = MAX_CONTAINER_NAME_CHARS - 1 - UPLOADS_CONTAINER_HASH_CHARS
"""UPLOADS_CONTAINER is a prefix: `{prefix}-{hash}` must still be a valid (at most 63 characters) container name."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def instance_id_for(resource_id: str, correlation_id: str) -> str:
    """The orchestration id of an event-started scan: same resource and correlation id, same instance."""
    return EVENT_INSTANCE_PREFIX + _digest(resource_id.lower(), correlation_id.lower())[:32]


def rescan_instance_id(target: str, nonce: str) -> str:
    """The orchestration id of a manual rescan of `target` (an image ref or resource id)."""
    return RESCAN_INSTANCE_PREFIX + _digest(target, nonce)[:32]


def batch_instance_id(sequence: int, first_key: str, first_requester: str) -> str:
    """The scan queue's runner of batch `sequence`, whose first image (key) was first asked for by `first_requester`:
    a scan instance id (`scan-<32 hex>`), so the upload events of its group find it like any scan's
    (core.upload_events). No clock in it: the same scenario names the same runners.
    """
    return EVENT_INSTANCE_PREFIX + _digest("scan-batch", str(sequence), first_key, first_requester)[:32]


def scanner_group_name(instance_id: str) -> str:
    """The ACI container group that scans for `instance_id`: lower case, [a-z0-9-], at most 63 characters."""
    return SCANNER_GROUP_PREFIX + _digest(instance_id)[:24]


def uploads_container_name(prefix: str, group_name: str) -> str:
    """The blob container that scanner group `group_name` alone uploads into: `{prefix}-{24 hex}`.

    A valid container name (3-63 of a-z, 0-9, single hyphens) whenever `prefix` is one of at most
    MAX_UPLOADS_CONTAINER_PREFIX_CHARS characters (core.settings checks UPLOADS_CONTAINER so).
    """
    if len(prefix) > MAX_UPLOADS_CONTAINER_PREFIX_CHARS:
        raise ValueError(f"uploads container prefix longer than {MAX_UPLOADS_CONTAINER_PREFIX_CHARS} characters")
    return f"{prefix}-{_digest('uploads', group_name)[:UPLOADS_CONTAINER_HASH_CHARS]}"


def image_key(canonical_ref: str, digest: str | None = None) -> str:
    """The storage key of an image: by digest when known, else by canonical reference."""
    basis = digest if digest else canonical_ref
    return _digest(basis)[:40]
