"""Pure decisions of scan_deployment: input shapes, group plans, shared results, progress and output."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.events import DeploymentEvent, parse_resource_id
from core.naming import SCANNER_GROUP_PREFIX, scanner_group_name
from core.options import ScanOptions
from core.report import ImageResult
from core.results import ImageToCheck
from core.scan_input import DeploymentTarget, ImageTarget, parse_scan_input, scan_input_for_event, scan_input_for_image
from core.scan_plan import (
    Progress,
    distinct_images,
    group_prefix,
    overall_status,
    plan_groups,
    scan_output,
    shared_result,
)

RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/apps"
    "/providers/Microsoft.ContainerInstance/containerGroups/web"
)
EVENT = DeploymentEvent.from_parts(parse_resource_id(RESOURCE_ID), "corr-1", datetime(2026, 10, 2, 8, 0, tzinfo=UTC))


def images(n: int) -> list[ImageToCheck]:
    return [ImageToCheck(image=f"docker.io/library/app{i}:1") for i in range(n)]


def result(image: str, status: str, instance_id: str | None = None) -> ImageResult:
    return ImageResult.model_validate({"image": image, "status": status, "instance_id": instance_id})


# --- input ------------------------------------------------------------------------------------------------------


def test_current_shape_round_trips() -> None:
    raw = scan_input_for_event(EVENT, ScanOptions(scan_timeout_seconds=600), force=True)
    parsed = parse_scan_input(raw)
    assert isinstance(parsed.target, DeploymentTarget)
    assert parsed.target.event == EVENT
    assert parsed.options.scan_timeout_seconds == 600
    assert parsed.force is True


def test_starter_shape_event_and_options_is_accepted() -> None:
    raw = {"event": EVENT.model_dump(mode="json"), "options": {"scan_timeout_seconds": 900}}
    parsed = parse_scan_input(raw)
    assert isinstance(parsed.target, DeploymentTarget)
    assert parsed.options.scan_timeout_seconds == 900
    assert parsed.force is False


def test_bare_event_with_force_is_accepted() -> None:
    parsed = parse_scan_input(EVENT.model_dump(mode="json") | {"force": True})
    assert parsed.target.label == EVENT.resource_id
    assert parsed.force is True


def test_image_target_is_canonical() -> None:
    parsed = parse_scan_input(scan_input_for_image("nginx:1.27", ScanOptions()))
    assert isinstance(parsed.target, ImageTarget)
    assert parsed.target.image == "docker.io/library/nginx:1.27"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "text",
        {"target": {"kind": "image", "image": "UPPER/Case::bad"}},
        {"target": {"kind": "bucket"}},
        {"target": {"kind": "image", "image": "nginx"}, "surprise": 1},
        {"event": {"kind": "aci"}},
    ],
)
def test_bad_inputs_are_validation_errors(raw: object) -> None:
    with pytest.raises(ValidationError):
        parse_scan_input(raw)


# --- groups -----------------------------------------------------------------------------------------------------


def test_one_group_uses_the_instance_name_and_prefix() -> None:
    (group,) = plan_groups("scan-1", images(3), max_per_group=10, max_groups=5)
    assert group.name == scanner_group_name("scan-1")
    assert group.prefix == "scan-1"
    assert [i.image for i in group.images] == [i.image for i in images(3)]


def test_groups_split_evenly_and_keep_order() -> None:
    groups = plan_groups("scan-1", images(7), max_per_group=3, max_groups=5)
    assert [len(g.images) for g in groups] == [3, 2, 2]
    assert [i for g in groups for i in g.images] == images(7)
    assert [g.prefix for g in groups] == ["scan-1", group_prefix("scan-1", 1), group_prefix("scan-1", 2)]
    assert len({g.name for g in groups}) == 3


def test_groups_never_exceed_the_concurrency_limit() -> None:
    groups = plan_groups("scan-1", images(25), max_per_group=2, max_groups=4)
    assert len(groups) == 4
    assert sum(len(g.images) for g in groups) == 25


def test_no_images_no_groups() -> None:
    assert plan_groups("scan-1", [], max_per_group=3, max_groups=2) == []


@given(n=st.integers(1, 200), per=st.integers(1, 60), cap=st.integers(1, 100))
def test_group_plan_invariants(n: int, per: int, cap: int) -> None:
    groups = plan_groups("scan-x", images(n), max_per_group=per, max_groups=cap)
    assert 1 <= len(groups) <= cap
    sizes = [len(g.images) for g in groups]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
    assert all(g.name.startswith(SCANNER_GROUP_PREFIX) and len(g.name) <= 63 for g in groups)
    assert len(groups) == 1 or max(sizes) <= per or len(groups) == cap


def test_distinct_images_by_lease_key() -> None:
    digest = "sha256:" + "a" * 64
    a = ImageToCheck(image="docker.io/library/a:1", digest=digest)
    b = ImageToCheck(image="docker.io/library/a@" + digest, digest=digest)
    c = ImageToCheck(image="docker.io/library/c:1")
    assert distinct_images([a, b, c, c]) == [a, c]


# --- outcomes ---------------------------------------------------------------------------------------------------


def test_shared_result_from_a_seen_holder_is_reused() -> None:
    item = ImageToCheck(image="docker.io/library/a:1")
    latest = result("docker.io/library/a:1", "completed", "scan-holder")
    shared = shared_result(item, latest, ["scan-holder"], instance_id="scan-me")
    assert shared.status == "completed" and shared.instance_id == "scan-holder"
    assert shared.reason is not None and "shared scan by scan-holder" in shared.reason


def test_shared_result_names_the_holder_once_when_another_waiter_stored_it() -> None:
    item = ImageToCheck(image="docker.io/library/a:1")
    first = shared_result(
        item, result("docker.io/library/a:1", "completed", "scan-holder"), ["scan-holder"], instance_id="w1"
    )
    again = shared_result(item, first, ["scan-holder"], instance_id="w2")
    assert again.reason == first.reason == "shared scan by scan-holder"
    failed = ImageResult.model_validate(
        {"image": "docker.io/library/a:1", "status": "failed", "instance_id": "scan-holder", "reason": "exit code 9"}
    )
    assert (
        shared_result(item, failed, ["scan-holder"], instance_id="w3").reason
        == "shared scan by scan-holder; exit code 9"
    )


def test_shared_result_from_an_older_scan_is_a_failure() -> None:
    item = ImageToCheck(image="docker.io/library/a:1")
    latest = result("docker.io/library/a:1", "completed", "scan-old")
    shared = shared_result(item, latest, ["scan-holder"], instance_id="scan-me")
    assert shared.status == "failed"
    assert shared.reason == "shared scan by scan-holder left no result"
    assert shared_result(item, None, [], instance_id="scan-me").status == "failed"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "completed"),
        (["completed", "cached", "denied"], "completed"),
        (["completed", "timed_out"], "partial"),
        (["failed", "timed_out"], "failed"),
    ],
)
def test_overall_status(statuses: list[str], expected: str) -> None:
    assert overall_status([result(f"docker.io/library/x{i}:1", s) for i, s in enumerate(statuses)]) == expected


def test_output_without_results_but_with_an_error_is_failed() -> None:
    output = scan_output({"kind": "image"}, [], error="boom")
    assert output == {"target": {"kind": "image"}, "status": "failed", "images": [], "error": "boom"}


def test_progress_custom_status() -> None:
    progress = Progress("target-1")
    progress.add_images(["a", "b", "a"])
    progress.mark(["b"], "scanning")
    progress.record([result("docker.io/library/a:1", "cached")])
    progress.groups["qscan-1"] = "Running"
    progress.polls = 2
    progress.phase = "scanning"
    assert progress.as_status() == {
        "phase": "scanning",
        "target": "target-1",
        "imageCount": 3,
        "imageStatuses": {"pending": 1, "scanning": 1, "cached": 1},
        "images": [
            {"image": "a", "status": "pending"},
            {"image": "b", "status": "scanning"},
            {"image": "docker.io/library/a:1", "status": "cached"},
        ],
        "groupCount": 1,
        "groupStates": {"Running": 1},
        "groups": [{"name": "qscan-1", "state": "Running"}],
        "polls": 2,
    }
