"""Deterministic names: orchestration instance ids, scanner group names and image keys."""

from __future__ import annotations

import hashlib

SCANNER_GROUP_PREFIX = "qscan-"
EVENT_INSTANCE_PREFIX = "scan-"
RESCAN_INSTANCE_PREFIX = "rescan-"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def instance_id_for(resource_id: str, correlation_id: str) -> str:
    """The orchestration id of an event-started scan: same resource and correlation id, same instance."""
    return EVENT_INSTANCE_PREFIX + _digest(resource_id.lower(), correlation_id.lower())[:32]


def rescan_instance_id(target: str, nonce: str) -> str:
    """The orchestration id of a manual rescan of `target` (an image ref or resource id)."""
    return RESCAN_INSTANCE_PREFIX + _digest(target, nonce)[:32]


def scanner_group_name(instance_id: str) -> str:
    """The ACI container group that scans for `instance_id`: lower case, [a-z0-9-], at most 63 characters."""
    return SCANNER_GROUP_PREFIX + _digest(instance_id)[:24]


def image_key(canonical_ref: str, digest: str | None = None) -> str:
    """The storage key of an image: by digest when known, else by canonical reference."""
    basis = digest if digest else canonical_ref
    return _digest(basis)[:40]
