"""devhost fails an orchestration whose custom status is over 16 KB of UTF-16 JSON text, as Azure does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devhost.custom_status import CUSTOM_STATUS_LIMIT_BYTES, custom_status_error, utf16_json_bytes
from devhost.engine import DurableEngine
from devhost.history import EventType

APP = "probe_status_limit_app"
TIMEOUT = 30
OVERHEAD = len('{"step":"big","text":""}')
"""The status around the string, in UTF-16 code units (2 bytes each)."""


def run(make_engine: Callable[..., DurableEngine], chars: int, char: str = "x") -> dict[str, Any]:
    """Run the probe to its end: its status, with `scheduled` how many activities it scheduled."""
    engine = make_engine(APP)
    instance_id = engine.start_new("status_of_size", None, {"chars": chars, "char": char})
    status: dict[str, Any] = engine.wait_for_completion(instance_id, timeout=TIMEOUT)
    history = engine.history(instance_id)
    status["scheduled"] = sum(1 for e in history if e["EventType"] == EventType.TASK_SCHEDULED)
    return status


def test_a_status_of_exactly_16_kb_is_kept(make_engine: Callable[..., DurableEngine]) -> None:
    status = run(make_engine, CUSTOM_STATUS_LIMIT_BYTES // 2 - OVERHEAD)
    assert status["runtimeStatus"] == "Completed"
    assert status["scheduled"] == 2


def test_one_more_character_fails_the_orchestration_with_the_size_and_schedules_nothing(
    make_engine: Callable[..., DurableEngine],
) -> None:
    status = run(make_engine, CUSTOM_STATUS_LIMIT_BYTES // 2 - OVERHEAD + 1)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'status_of_size' failed: The UTF-16 size of the JSON-serialized payload must not "
        "exceed 16 KB. The current payload size is 16.0 KB."
    )
    assert "16,386 bytes of UTF-16 JSON text" in status["output"]
    assert status["scheduled"] == 1  # the episode that set it scheduled nothing


def test_non_ascii_counts_in_utf16_code_units_not_python_characters(make_engine: Callable[..., DurableEngine]) -> None:
    """An emoji is one Python character but two UTF-16 code units: 4,100 of them are over 16 KB."""
    assert run(make_engine, 4_100, "\U0001f600")["runtimeStatus"] == "Failed"
    assert run(make_engine, 4_000, "é")["runtimeStatus"] == "Completed"


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("a", 1),
        ("\u00e9", 1),  # BMP, written as is
        ("\U0001f600", 2),  # a surrogate pair
        ("\n", 2),  # escaped: \n
        ("\x01", 6),  # escaped: \u0001
        ("\u2028", 6),  # Newtonsoft escapes U+0085, U+2028 and U+2029
        ('"', 2),
    ],
)
def test_the_measure_counts_newtonsofts_compact_json_in_utf16(text: str, units: int) -> None:
    assert utf16_json_bytes({"k": text}) == 2 * (len('{"k":""}') + units)


@pytest.mark.parametrize("value", [None, "", {"a": 1}])
def test_small_or_absent_statuses_are_fine(value: object) -> None:
    assert custom_status_error(value) is None
