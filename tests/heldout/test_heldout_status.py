"""Held-out worst cases for the custom status (issue 9, item 8): whatever the strings hold (quotes, backslashes,
control characters, surrogate pairs, the characters Newtonsoft escapes) and however many images and groups, the
status stays within Azure's 16 KB of UTF-16 JSON text as devhost measures it."""

from __future__ import annotations

import pytest

from core.custom_status import note_status, progress_status
from devhost.custom_status import CUSTOM_STATUS_LIMIT_BYTES, custom_status_error, utf16_json_bytes

ALPHABETS = ['"', "\\", "\x01", "\U0001f600", "\u2028", "\u0085", "a", '"\\\x01\U0001f600\u2028\u00e9']


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_the_worst_status_fits(alphabet: str) -> None:
    images = {f"{i}{alphabet * 1100}"[:1024]: f"s{i % 30}{alphabet * 60}" for i in range(1000)}
    groups = {f"g{i}{alphabet * 100}": f"state{i % 30}{alphabet * 60}" for i in range(200)}
    status = progress_status(
        phase=alphabet * 100, target=alphabet * 5000, images=images, groups=groups, polls=10**12, note=alphabet * 9000
    )
    assert utf16_json_bytes(status) <= CUSTOM_STATUS_LIMIT_BYTES
    assert custom_status_error(status) is None
    assert status["imageCount"] == 1000 and sum(status["imageStatuses"].values()) == 1000
    assert utf16_json_bytes(note_status(alphabet * 100, alphabet * 100_000)) <= CUSTOM_STATUS_LIMIT_BYTES


def test_devhost_refuses_one_byte_pair_over() -> None:
    fits = {"x": "a" * (CUSTOM_STATUS_LIMIT_BYTES // 2 - len('{"x":""}'))}
    assert custom_status_error(fits) is None
    assert custom_status_error({"x": fits["x"] + "a"}) is not None
    assert custom_status_error({"x": fits["x"][:-1] + "\U0001f600"}) is not None  # two UTF-16 units
