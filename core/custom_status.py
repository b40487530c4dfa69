"""The custom status of `scan_deployment`, bounded to fit Azure's limit whatever the deployment's size.

Azure keeps a custom status of at most 16 KB of UTF-16 JSON text and fails the orchestration when one is larger
(Durable Functions docs, "Custom orchestration status"; the extension re-serializes the value compactly with
Newtonsoft.Json and counts `Encoding.Unicode` bytes). The status therefore carries counts for every image and group
but lists only the first ones that fit a budget, with each string clipped.

The guarantee: sizes are measured as compact JSON with every non-ASCII character escaped (`json_chars`). That text
is never shorter, in UTF-16 code units, than what the host writes (which escapes at most what `ensure_ascii` escapes,
and a character escaped here takes at least as many units as written there), so a status of at most
STATUS_BUDGET_CHARS such characters is at most 2 * STATUS_BUDGET_CHARS bytes of UTF-16 on Azure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

AZURE_CUSTOM_STATUS_BYTES = 16 * 1024
"""Azure's limit: 16 KB of UTF-16 JSON text (2 bytes per code unit)."""
STATUS_BUDGET_CHARS = 7 * 1024
"""Our bound in `json_chars` (14 KB of UTF-16 at most): 2 KB below the limit for anything the host adds or reformats."""
MAX_LISTED_IMAGES = 50
MAX_LISTED_GROUPS = 20
MAX_COUNTED_KEYS = 12
"""Distinct statuses (or group states) counted by name; any more are counted together under OTHER_KEY."""
OTHER_KEY = "other"
TARGET_CHARS = 400
NOTE_CHARS = 1000
REF_CHARS = 300
"""An image reference may be up to 1024 characters: the status shows at most this much of it (JSON-escaped)."""
NAME_CHARS = 80
STATE_CHARS = 40
ELLIPSIS = "..."


def json_chars(value: Any) -> int:
    """Length of `value` as compact JSON with non-ASCII escaped: an upper bound of its UTF-16 code units on Azure."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


def _escaped_chars(char: str) -> int:
    """Characters that `char` takes inside a JSON string with non-ASCII escaped."""
    return 1 if " " <= char <= "~" and char not in '"\\' else json_chars(char) - 2


def clip(text: str, max_chars: int) -> str:
    """`text`, or its longest prefix plus "..." whose JSON string (quotes included) takes at most `max_chars`."""
    if len(text) + 2 <= max_chars and json_chars(text) <= max_chars:
        return text
    room = max_chars - 2 - len(ELLIPSIS)
    if text[:room].isprintable() and text[:room].isascii() and '"' not in text[:room] and "\\" not in text[:room]:
        return text[:room] + ELLIPSIS  # the common case: one character each, no escapes (text is longer than room)
    used = 0
    for index, char in enumerate(text):
        used += _escaped_chars(char)
        if used > room:
            return text[:index] + ELLIPSIS
    return text  # not reached: the whole text did not fit


def counts(values: Iterable[str]) -> dict[str, int]:
    """How many of each value, first seen first, at most MAX_COUNTED_KEYS names (the rest under OTHER_KEY)."""
    tally: Counter[str] = Counter()
    for value, number in Counter(values).items():
        tally[clip(value, STATE_CHARS)] += number
    named = list(tally.items())[:MAX_COUNTED_KEYS]
    rest = sum(tally.values()) - sum(n for _, n in named)
    return dict(named) | ({OTHER_KEY: rest + dict(named).get(OTHER_KEY, 0)} if rest else {})


def _listed(
    entries: Iterable[tuple[str, str]], keys: tuple[str, str], limits: tuple[int, int], count: int, room: int
) -> tuple[list[dict[str, str]], int]:
    """The first entries (at most `count`) whose JSON fits `room` characters, and the characters they use."""
    listed: list[dict[str, str]] = []
    used = 0
    for first, second in entries:
        if len(listed) >= count:
            break
        entry = {keys[0]: clip(first, limits[0]), keys[1]: clip(second, limits[1])}
        cost = json_chars(entry) + (1 if listed else 0)
        if used + cost > room:
            break
        listed.append(entry)
        used += cost
    return listed, used


def progress_status(
    *,
    phase: str,
    target: str,
    images: Mapping[str, str],
    groups: Mapping[str, str],
    polls: int,
    note: str | None,
) -> dict[str, Any]:
    """The custom status: phase, target, counts of every image and group, the first ones listed, polls, note.

    Lists are filled groups first (there are few), then images, while the whole stays within STATUS_BUDGET_CHARS.
    """
    status: dict[str, Any] = {
        "phase": clip(phase, STATE_CHARS),
        "target": clip(target, TARGET_CHARS),
        "imageCount": len(images),
        "imageStatuses": counts(images.values()),
        "images": [],
        "groupCount": len(groups),
        "groupStates": counts(groups.values()),
        "groups": [],
        "polls": polls,
    }
    if note:
        status["note"] = clip(note, NOTE_CHARS)
    room = STATUS_BUDGET_CHARS - json_chars(status)
    status["groups"], used = _listed(
        groups.items(), ("name", "state"), (NAME_CHARS, STATE_CHARS), MAX_LISTED_GROUPS, room
    )
    status["images"], _ = _listed(
        images.items(), ("image", "status"), (REF_CHARS, STATE_CHARS), MAX_LISTED_IMAGES, room - used
    )
    return status


def note_status(phase: str, note: str) -> dict[str, Any]:
    """A status with only a phase and a note (e.g. an input that could not be read), clipped like the full one."""
    return {"phase": clip(phase, STATE_CHARS), "note": clip(note, NOTE_CHARS)}
