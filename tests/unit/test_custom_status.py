"""The custom status stays under Azure's 16 KB of UTF-16 JSON text for any deployment, and stays useful."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.custom_status import (
    AZURE_CUSTOM_STATUS_BYTES,
    MAX_COUNTED_KEYS,
    MAX_LISTED_IMAGES,
    OTHER_KEY,
    STATUS_BUDGET_CHARS,
    clip,
    json_chars,
    note_status,
    progress_status,
)
from core.naming import scanner_group_name
from devhost.custom_status import utf16_json_bytes

WORST_CHARS = ["\U0001f600", "\x01", "\u2028", '"', "\\", "\u00e9", "a"]
"""Characters that take the most room escaped (12, 6, 6, 2, 2 ...) and the cheapest."""
REF_MAX = 1024
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


def within_limits(status: dict[str, Any]) -> None:
    """Our own bound and Azure's, measured as the extension measures it."""
    assert json_chars(status) <= STATUS_BUDGET_CHARS
    assert utf16_json_bytes(status) <= 2 * STATUS_BUDGET_CHARS < AZURE_CUSTOM_STATUS_BYTES


@given(json_values)
def test_escaped_json_is_an_upper_bound_of_the_hosts_utf16_text(value: object) -> None:
    assert utf16_json_bytes(value) <= 2 * json_chars(value)


def test_the_worst_case_status_fits() -> None:
    """2,000 images with 1,024-character references of the costliest characters, 300 groups, every string at its
    longest, more distinct statuses than are counted by name, counts far beyond any real scan."""
    for char in WORST_CHARS:
        longest = char * REF_MAX
        images = {f"{index}{longest}"[:REF_MAX]: f"{index % 40}{longest}" for index in range(2_000)}
        groups = {f"{index}{longest}": f"{index}{longest}" for index in range(300)}
        status = progress_status(
            phase=longest, target=longest * 4, images=images, groups=groups, polls=10**15, note=longest * 8
        )
        within_limits(status)
        assert status["imageCount"] == 2_000 and status["groupCount"] == 300
        assert sum(status["imageStatuses"].values()) == 2_000
        assert len(status["imageStatuses"]) == MAX_COUNTED_KEYS + 1 and OTHER_KEY in status["imageStatuses"]
        assert status["groups"], "some groups are still listed"


@given(
    images=st.dictionaries(
        st.text(max_size=REF_MAX), st.sampled_from(["pending", "scanning", "completed", *WORST_CHARS]), max_size=300
    ),
    groups=st.dictionaries(st.text(max_size=100), st.text(max_size=100), max_size=40),
    target=st.text(max_size=2_000),
    note=st.none() | st.text(max_size=5_000),
    polls=st.integers(0, 10**12),
)
def test_any_status_fits_and_lists_a_prefix_of_what_it_counts(
    images: dict[str, str], groups: dict[str, str], target: str, note: str | None, polls: int
) -> None:
    status = progress_status(phase="scanning", target=target, images=images, groups=groups, polls=polls, note=note)
    within_limits(status)
    assert status["imageCount"] == len(images) and sum(status["imageStatuses"].values()) == len(images)
    assert status["groupCount"] == len(groups) and sum(status["groupStates"].values()) == len(groups)
    for listed, (image, state) in zip(status["images"], images.items(), strict=False):
        assert image.startswith(listed["image"].removesuffix("...")) and state.startswith(
            listed["status"].removesuffix("...")
        )


def test_a_hundred_image_app_lists_the_first_fifty_and_counts_them_all() -> None:
    images = {f"myregistry.azurecr.io/team/service-{i:03}:1.{i}.0": "scanning" for i in range(100)}
    images |= {"docker.io/library/nginx:1.27": "cached"}
    groups = {scanner_group_name(f"scan-{i}"): "Running" for i in range(4)}
    status = progress_status(
        phase="scanning", target="/subscriptions/x", images=images, groups=groups, polls=2, note=None
    )
    within_limits(status)
    assert status["imageCount"] == 101
    assert status["imageStatuses"] == {"scanning": 100, "cached": 1}
    assert [e["image"] for e in status["images"]] == list(images)[:MAX_LISTED_IMAGES]
    assert status["groups"] == [{"name": name, "state": "Running"} for name in groups]


def test_a_small_scan_lists_everything_unclipped() -> None:
    status = progress_status(
        phase="done", target="t", images={"a": "completed"}, groups={"g": "Deleted"}, polls=1, note="n"
    )
    assert status == {
        "phase": "done",
        "target": "t",
        "imageCount": 1,
        "imageStatuses": {"completed": 1},
        "images": [{"image": "a", "status": "completed"}],
        "groupCount": 1,
        "groupStates": {"Deleted": 1},
        "groups": [{"name": "g", "state": "Deleted"}],
        "polls": 1,
        "note": "n",
    }


@given(text=st.text(max_size=3_000), limit=st.integers(5, 2_000))
def test_clip_keeps_the_longest_prefix_that_fits(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert json_chars(clipped) <= limit
    if clipped != text:
        prefix = clipped.removesuffix("...")
        assert text.startswith(prefix) and json_chars(text[: len(prefix) + 1] + "...") > limit


def test_the_invalid_input_status_is_bounded_too() -> None:
    status = note_status("failed", "\U0001f600" * 100_000)
    within_limits(status)
    assert json.loads(json.dumps(status))["phase"] == "failed"
