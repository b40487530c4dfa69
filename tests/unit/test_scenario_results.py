"""A scenario's scan entry may list successive results for the same image, used in order, the last repeating."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.armsim import scanner_run
from devhost.armsim.scenario import MAX_SUCCESSIVE_RESULTS, Scenario
from devhost.armsim.state import SimState
from devhost.demo_scenario import ScenarioError, parse_scenario

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:1.27"
TWO = {"results": [{"vulnerabilities": {"HIGH": 1}}, {"vulnerabilities": {"HIGH": 2}, "duration_s": 60}]}


def _qids(scenario: Scenario, scans_before: int) -> list[str]:
    plan = scanner_run.plan_scan(scenario, [NGINX], None, START, scans_before={NGINX: scans_before})
    return [str(f.qid) for f in scanner_run.image_scan(plan.images[0]).findings]


def test_successive_results_are_used_in_order_the_last_repeating() -> None:
    scenario = Scenario.model_validate({"scans": {"nginx:1.27": TWO}})
    assert _qids(scenario, 0) == ["100001"]
    assert _qids(scenario, 1) == ["100001", "100002"]  # the second scan finds one more QID
    assert _qids(scenario, 5) == ["100001", "100002"]
    assert scanner_run.behaviour_for(scenario, "nginx:1.27", 1).duration_s == 60
    assert scanner_run.behaviour_for(scenario, "nginx:1.27").vulnerabilities == {"HIGH": 1}


def test_the_default_entry_may_list_results_too() -> None:
    scenario = Scenario.model_validate({"scans": {"default": TWO}})
    assert scanner_run.behaviour_for(scenario, "redis:7", 3).vulnerabilities == {"HIGH": 2}


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"results": []}, "at least 1"),
        ({"results": [{"vulnerabilities": {"HIGH": 1}}], "duration_s": 5}, "holds nothing else (move duration_s"),
        ({"results": [{"results": [{}]}]}, "cannot list results of its own"),
        ({"results": [{"vulnerabilities": {"SEVERE": 1}}]}, "unknown severity"),
        ({"results": [{"result": "maybe"}]}, "result"),
        ({"results": [{"bogus": 1}]}, "bogus"),
        ({"results": [{}] * (MAX_SUCCESSIVE_RESULTS + 1)}, f"at most {MAX_SUCCESSIVE_RESULTS}"),
        ({"results": {"vulnerabilities": {}}}, "valid list"),
    ],
)
def test_bad_successive_results_are_refused_with_a_reason(entry: dict[str, Any], reason: str) -> None:
    with pytest.raises(ScenarioError, match="scans") as raised:
        parse_scenario({"scans": {"nginx:1.27": entry}})
    assert reason in str(raised.value)


def test_the_simulator_counts_each_images_scans() -> None:
    """Two groups scanning nginx one after the other: the second gets the second result (devhost/armsim/state.py)."""
    state = SimState(Scenario.model_validate({"scans": {"nginx:1.27": TWO}}), lambda: START, "x-identity")
    assert state.scans_of[NGINX] == 0
    state.scans_of.update([NGINX])
    plan = scanner_run.plan_scan(state.scenario, [NGINX], None, START, scans_before=state.scans_of)
    assert plan.images[0].behaviour.vulnerabilities == {"HIGH": 2}
