"""A scan that only waits on images another scan holds: it ends with the waiting reason, whatever the holder does."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.naming import scanner_group_name
from devhost.azurite import Azurite
from tests.orchestration.pipeline_support import needs_arm_activities, running_pipeline
from tests.orchestration.test_scan_pipeline import API, NGINX, WEB, scenario, start_deployment

pytestmark = [pytest.mark.azurite, pytest.mark.slow, needs_arm_activities]


def test_a_waiter_on_a_scan_that_never_finishes_times_out_with_the_waiting_reason(
    azurite: Azurite, tmp_path: Path
) -> None:
    """Both deployments use only nginx, whose scan hangs: one holds the lease to its timeout, the other waits.

    The waiter has no scanner group and no freed image to read, so its collect step has nothing to fan out
    (an empty task_all, which the SDK answers with None): it must still end `timed_out` with the waiting reason.
    """
    hang = scenario((WEB, ["nginx:1.27"]), (API, ["nginx:1.27"]), scans={"default": {"result": "hang"}})
    with running_pipeline(azurite, hang, tmp_path, SCAN_TIMEOUT="600") as pipeline:
        first = start_deployment(pipeline, WEB)
        second = start_deployment(pipeline, API)
        pipeline.run()
        outputs = {instance: pipeline.output(instance) for instance in (first, second)}
        created = pipeline.sim.stats()["by_group"]
        holder = next(i for i in (first, second) if scanner_group_name(i) in created)
        waiter = second if holder == first else first
        result = pipeline.results_by_image(waiter)[NGINX]
        assert result["status"] == "timed_out", outputs[waiter]
        assert result["reason"] == f"waited 600 s for the scan by {holder}"
        assert outputs[waiter]["status"] == "failed"
        assert "error" not in outputs[waiter]
        assert pipeline.results_by_image(holder)[NGINX]["status"] == "timed_out"
        assert pipeline.status(waiter)["customStatus"]["phase"] == "done"
        assert pipeline.sim.stats()["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
