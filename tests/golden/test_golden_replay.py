"""Every golden history replays against the current orchestrator code (fast: no Azurite, no ARM simulator).

`test_..._replays_deterministically` is the upgrade-safety check: it fails on non-determinism, the error an
in-flight instance would hit after a deploy. Never fix it by re-recording: keep the recorded sequence, or make the
change a new orchestrator name (docs/operations.md, "Changing an orchestrator"). `test_..._recorded_outcome` fails
when inputs, timer times, output or custom status changed on a recorded path: replay-safe, so re-record deliberately
in the same commit if the change is intended (tests/golden/README.md).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import pytest

from activities import names as activity
from devhost import history as h
from tests.golden.cases import CASES
from tests.golden.queue_cases import QUEUE_CASES
from tests.golden.replay import GOLDEN_ROOT, Problems, golden_files, load_golden, replay_golden

FILES = golden_files()
NONDETERMINISM_HINT = (
    "\nThis change breaks instances in flight. Keep the recorded action sequence on this path, or register the new "
    "code under a new orchestrator name (see docs/operations.md, 'Changing an orchestrator'). Do not re-record."
)
CONTENT_HINT = (
    "\nReplay-safe, but behaviour on a recorded path changed. If intended, re-record in the same commit: "
    "python -m tests.golden.record --case <case> (tests/golden/README.md)."
)


@cache
def replayed(path: Path) -> Problems:
    return replay_golden(load_golden(path), str(path.relative_to(GOLDEN_ROOT)))


def test_there_are_golden_histories() -> None:
    assert len(FILES) >= 20


def test_every_case_has_its_files_and_every_file_a_case() -> None:
    expected = {name for case in CASES for name in case.file_names}
    expected |= {name for queue_case in QUEUE_CASES for name in queue_case.file_names}
    found = {path.stem for path in FILES}
    assert found == expected, f"missing: {sorted(expected - found)}, stray: {sorted(found - expected)}"
    names = {case.name for case in CASES} | {queue_case.name for queue_case in QUEUE_CASES}
    assert all(load_golden(path)["case"] in names for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_history_replays_deterministically(path: Path) -> None:
    problems = replayed(path)
    assert not problems.nondeterminism, "\n".join(problems.nondeterminism) + NONDETERMINISM_HINT


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_history_replays_to_the_recorded_outcome(path: Path) -> None:
    problems = replayed(path)
    assert not problems.content, "\n".join(problems.content) + CONTENT_HINT


# ---- the checker itself: it must catch what the extension would, and only that -------------------------------------

HAPPY = GOLDEN_ROOT / "scan_deployment" / "happy_three_images.json"


def test_a_renamed_activity_is_reported_as_nondeterminism_with_its_action_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(activity, "LOOKUP_CACHE", "lookup_cache_v2")
    problems = replay_golden(load_golden(HAPPY), "happy")
    assert len(problems.nondeterminism) == 1
    message = problems.nondeterminism[0]
    assert "action index 1" in message and "lookup_cache" in message and "lookup_cache_v2" in message


def test_a_missing_recorded_action_is_reported_as_nondeterminism() -> None:
    golden = load_golden(HAPPY)
    end = next(i for i, e in enumerate(golden["history"]) if e[h.EVENT_TYPE] == h.EventType.EXECUTION_COMPLETED)
    extra = h.task_scheduled(h.parse_timestamp(golden["history"][end][h.TIMESTAMP]), 99, "extra_activity", "null")
    golden["history"].insert(end, extra)
    problems = replay_golden(golden, "happy+extra")
    assert (
        problems.nondeterminism
        and "recorded CallActivity 'extra_activity', replay scheduled nothing" in (problems.nondeterminism[0])
    )


def test_a_moved_timer_is_a_content_change_not_nondeterminism() -> None:
    golden = copy.deepcopy(load_golden(HAPPY))
    timer = next(e for e in golden["history"] if e[h.EVENT_TYPE] == h.EventType.TIMER_CREATED)
    timer[h.FIRE_AT] = "2026-10-02T08:00:21.000000Z"
    problems = replay_golden(golden, str(HAPPY.relative_to(GOLDEN_ROOT)))
    assert problems.nondeterminism == []
    added = [p for p in problems.content if p not in replayed(HAPPY).content]
    assert len(added) == 1 and "FireAt differs" in added[0]


def test_a_changed_output_is_a_content_change() -> None:
    golden = load_golden(HAPPY)
    golden["output"] = json.loads(json.dumps(golden["output"]).replace('"completed"', '"cached"', 1))
    problems = replay_golden(golden, "happy+output")
    assert problems.nondeterminism == [] and any("output differs" in p for p in problems.content)
