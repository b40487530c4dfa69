"""SCAN_EXCLUDE: resource-group, resource-id and image patterns that are never scanned (pure matching).

Entries are `rg:<glob>`, `resource:<glob over the ARM id>` and `image:<glob over the canonical reference>`; globs
are `fnmatch` globs (`*`, `?`, `[seq]`, `[!seq]`), matched with `fnmatch.fnmatchcase` over the whole value:
- `rg:` and `resource:` are case-insensitive (ARM compares names so): pattern and value are lower-cased first;
- `image:` is case-sensitive over the canonical reference (`core.images`: `docker.io/library/nginx:1.27`, with
  `@sha256:...` when the reference pins a digest), which is lower-case except for the tag.
Entries are comma-separated, so a glob cannot hold a comma. A bad entry raises InvalidExclusion naming it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ExclusionKind = Literal["rg", "resource", "image"]
EXCLUSION_KINDS: tuple[ExclusionKind, ...] = ("rg", "resource", "image")
MAX_EXCLUSION_CHARS = 512
"""The longest entry: an ARM id is at most a few hundred characters, a canonical image reference under 512."""
MAX_EXCLUSIONS = 100
MAX_SHOWN_CHARS = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RESOURCE_GROUP = re.compile(r"/resourcegroups/([^/]+)", re.IGNORECASE)


class InvalidExclusion(ValueError):
    """A SCAN_EXCLUDE entry that is not `rg:`, `resource:` or `image:` with a usable glob; the message names it."""


def shown(entry: str) -> str:
    """The entry as an error message can show it: control characters escaped, clipped."""
    text = repr(entry)[1:-1]
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


@dataclass(frozen=True, slots=True)
class Exclusion:
    """One parsed entry; `glob` is lower-cased for the case-insensitive kinds."""

    kind: ExclusionKind
    glob: str

    @property
    def text(self) -> str:
        """The entry as written in SCAN_EXCLUDE (normalised)."""
        return f"{self.kind}:{self.glob}"

    def matches(self, value: str) -> bool:
        """Whether `value` (a resource group name, an ARM id or a canonical image) matches the whole glob."""
        return fnmatch.fnmatchcase(value if self.kind == "image" else value.lower(), self.glob)


def parse_exclusion(entry: str) -> Exclusion:
    """One entry; InvalidExclusion (naming it) for an unknown prefix, an empty or too long glob, control characters."""
    if len(entry) > MAX_EXCLUSION_CHARS:
        raise InvalidExclusion(f"entry '{shown(entry)}' is longer than {MAX_EXCLUSION_CHARS} characters")
    if _CONTROL.search(entry):
        raise InvalidExclusion(f"entry '{shown(entry)}' contains control characters")
    prefix, colon, glob = entry.strip().partition(":")
    kind = prefix.strip().lower()
    if not colon or kind not in EXCLUSION_KINDS:
        raise InvalidExclusion(f"entry '{shown(entry)}' must start with rg:, resource: or image:")
    glob = glob.strip()
    if not glob:
        raise InvalidExclusion(f"entry '{shown(entry)}' has an empty glob")
    return Exclusion("image", glob) if kind == "image" else Exclusion(kind, glob.lower())  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExclusionRules:
    """The parsed SCAN_EXCLUDE; empty excludes nothing."""

    entries: tuple[Exclusion, ...] = ()

    def for_resource(self, resource_id: str) -> Exclusion | None:
        """The first `rg:`/`resource:` entry that excludes the resource (by its group, or its whole ARM id)."""
        group = _RESOURCE_GROUP.search(resource_id)
        for entry in self.entries:
            if entry.kind == "resource" and entry.matches(resource_id):
                return entry
            if entry.kind == "rg" and group is not None and entry.matches(group.group(1)):
                return entry
        return None

    def for_image(self, canonical_image: str) -> Exclusion | None:
        """The first `image:` entry that excludes the canonical image reference."""
        return next((e for e in self.entries if e.kind == "image" and e.matches(canonical_image)), None)

    def reason(self, *, resource_id: str | None = None, image: str | None = None) -> str | None:
        """Why the resource or image is excluded (`excluded by SCAN_EXCLUDE rg:legacy-*`), None when it is not."""
        entry = self.for_resource(resource_id) if resource_id else None
        if entry is None and image:
            entry = self.for_image(image)
        return None if entry is None else f"excluded by SCAN_EXCLUDE {entry.text}"


def parse_exclusions(entries: Iterable[str]) -> ExclusionRules:
    """Every entry parsed (duplicates once); InvalidExclusion naming the first bad one, or too many entries."""
    parsed = tuple(dict.fromkeys(parse_exclusion(entry) for entry in entries))
    if len(parsed) > MAX_EXCLUSIONS:
        raise InvalidExclusion(f"has {len(parsed)} entries; at most {MAX_EXCLUSIONS}")
    return ExclusionRules(parsed)


def check_exclusions(value: tuple[str, ...]) -> tuple[str, ...]:
    """Settings validator: the normalised entries; ValueError naming a bad one."""
    return tuple(entry.text for entry in parse_exclusions(value).entries)


def exclusion_reason(rules: ExclusionRules, *, resource_id: str | None = None, image: str | None = None) -> str | None:
    """Why a workload (its ARM id) or an image (canonical reference) is never scanned; None when it is scanned."""
    return rules.reason(resource_id=resource_id, image=image)


def is_excluded(rules: ExclusionRules, *, resource_id: str | None = None, image: str | None = None) -> bool:
    """Whether SCAN_EXCLUDE keeps the workload or the image from being scanned."""
    return exclusion_reason(rules, resource_id=resource_id, image=image) is not None
