"""The sweep orchestrator over scripted answers: Resource Graph throttling waits on durable timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from activities import names
from core.sweep import SWEEP_INSTANCE_ID
from orchestrators.names import ORCHESTRATOR_INVENTORY_SWEEP
from tests.orchestration.fake_context import START, ScriptedRun

PAGES: list[dict[str, Any]] = [
    {
        "throttled": True,
        "rows": 0,
        "added": 0,
        "skipped": 0,
        "skip_token": None,
        "quota_remaining": 0,
        "resets_after_s": 3,
    },
    {
        "throttled": False,
        "rows": 1000,
        "added": 10,
        "skipped": 1,
        "skip_token": "t1",
        "quota_remaining": 0,
        "resets_after_s": 4,
    },
    {
        "throttled": False,
        "rows": 200,
        "added": 2,
        "skipped": 0,
        "skip_token": None,
        "quota_remaining": 13,
        "resets_after_s": 5,
    },
]


def test_a_429_and_an_exhausted_quota_wait_for_the_window_then_the_sweep_finishes() -> None:
    answers = iter(PAGES)
    tokens: list[Any] = []

    def page(payload: dict[str, Any]) -> dict[str, Any]:
        tokens.append(payload["skip_token"])
        return next(answers)

    run = ScriptedRun(ORCHESTRATOR_INVENTORY_SWEEP, {"trigger": "api"}, instance_id=SWEEP_INSTANCE_ID)
    run.on_activity(names.SWEEP_BEGIN, {"subscriptions": ["0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"], "options": {}})
    run.on_activity(names.SWEEP_PAGE, page)
    run.on_activity(names.SWEEP_FINISH, {"removed": 3, "to_scan": []})
    run.on_activity(names.SWEEP_RECORD, {"recorded": True})
    result = run.run()
    assert tokens == [None, None, "t1"]  # the throttled page is asked again, then the next one
    assert [t - START for t in result.timers] == [timedelta(seconds=3), timedelta(seconds=7)]
    output = result.output
    assert (output["status"], output["queries"], output["throttled"], output["pages"]) == ("completed", 3, 1, 2)
    assert (output["seen"], output["added"], output["removed"], output["skipped_rows"]) == (1200, 12, 3, 1)
    assert result.calls(names.SWEEP_RECORD)[0]["sweep_id"] == START.strftime("%Y%m%dT%H%M%S")
