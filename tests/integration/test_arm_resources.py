"""resolve_images through the real SDK clients against the ARM simulator: ACI groups, ACA apps and jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from activities import clients
from activities.arm_resources import resolve_images, resolve_images_activity
from activities.clients import ArmError, ArmRetryableError
from core.events import DeploymentEvent, parse_resource_id
from core.settings import Settings, get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import point_process_at, resource_id, settings_env, settings_for

GROUP_ID = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
APP_ID = resource_id("Microsoft.App/containerApps", "hello-aca")
JOB_ID = resource_id("Microsoft.App/jobs", "nightly")
SCENARIO = Scenario.model_validate(
    {
        "resources": [
            {"id": GROUP_ID, "images": ["nginx:1.27", "redis@sha256:" + "a" * 64], "init_images": ["busybox"]},
            {"id": APP_ID, "images": ["myacr.azurecr.io/team/api:2", "nginx:1.27"], "init_images": ["Bad Image!"]},
            {"id": JOB_ID, "images": ["python:3.12-slim"], "init_images": ["ghcr.io/org/migrate:v1"]},
        ]
    }
)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmSimulator]:
    with ArmSimulator(SCENARIO) as running:
        point_process_at(running, monkeypatch)
        clients.reset_cache()
        yield running
    clients.reset_cache()


@pytest.fixture
def settings(sim: ArmSimulator) -> Settings:
    return settings_for(sim)


def event_for(resource: str) -> DeploymentEvent:
    parts = parse_resource_id(resource)
    return DeploymentEvent.from_parts(parts, "c0ffee00-1234-4abc-9def-000000000001", datetime(2026, 10, 2, tzinfo=UTC))


def test_container_group_images_and_init_images(settings: Settings) -> None:
    resolved = resolve_images(event_for(GROUP_ID), settings)
    assert resolved.found
    assert [(i.image, i.init) for i in resolved.images] == [
        ("docker.io/library/nginx:1.27", False),
        ("docker.io/library/redis@sha256:" + "a" * 64, False),
        ("docker.io/library/busybox:latest", True),
    ]
    assert all(i.container for i in resolved.images)


def test_container_app_reports_an_unparseable_image_without_failing(settings: Settings) -> None:
    resolved = resolve_images(event_for(APP_ID), settings)
    assert resolved.distinct_images() == ["myacr.azurecr.io/team/api:2", "docker.io/library/nginx:1.27"]
    assert len(resolved.rejected) == 1
    assert resolved.rejected[0].image == "Bad Image!" and resolved.rejected[0].init
    assert resolved.rejected[0].reason


def test_job_images_through_the_registered_activity_function(
    sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env(sim).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    payload = {**event_for(JOB_ID).model_dump(mode="json"), "force": True}
    try:
        output = resolve_images_activity(payload)
    finally:
        get_settings.cache_clear()
    assert [(i["image"], i["init"]) for i in output["images"]] == [
        ("docker.io/library/python:3.12-slim", False),
        ("ghcr.io/org/migrate:v1", True),
    ]


def test_upper_cased_activity_log_ids_resolve(settings: Settings) -> None:
    resolved = resolve_images(event_for(GROUP_ID.upper()), settings)
    assert resolved.found and len(resolved.images) == 3


def test_deleted_resource_is_an_explained_empty_result(settings: Settings) -> None:
    resolved = resolve_images(event_for(resource_id("Microsoft.App/containerApps", "gone-app")), settings)
    assert not resolved.found and resolved.images == [] and resolved.note


def test_throttling_surfaces_retry_after_without_hidden_retries(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("GET", r"/containerApps/hello-aca$", 429, retry_after=17)
    with pytest.raises(ArmRetryableError) as caught:
        resolve_images(event_for(APP_ID), settings)
    assert caught.value.retry_after_s == 17 and caught.value.status == 429
    assert str(caught.value).startswith("arm-retryable status=429")
    assert sim.stats()["total"] == 1  # the SDK did not retry behind the orchestration's back
    assert resolve_images(event_for(APP_ID), settings).found


def test_server_error_is_retryable_and_forbidden_is_not(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("GET", r"/jobs/nightly$", 500)
    with pytest.raises(ArmRetryableError):
        resolve_images(event_for(JOB_ID), settings)
    sim.inject("GET", r"/jobs/nightly$", 403, code="AuthorizationFailed")
    with pytest.raises(ArmError) as caught:
        resolve_images(event_for(JOB_ID), settings)
    assert not caught.value.retryable and caught.value.code == "AuthorizationFailed"


def test_image_exclusions_are_listed_apart_with_their_entry(settings: Settings) -> None:
    excluding = settings.model_copy(update={"scan_exclude": ("image:docker.io/library/nginx:*", "image:*busybox*")})
    resolved = resolve_images(event_for(GROUP_ID), excluding)
    assert [i.image for i in resolved.images] == ["docker.io/library/redis@sha256:" + "a" * 64]
    assert [(i.image, i.init, i.reason) for i in resolved.excluded] == [
        ("docker.io/library/nginx:1.27", False, "excluded by SCAN_EXCLUDE image:docker.io/library/nginx:*"),
        ("docker.io/library/busybox:latest", True, "excluded by SCAN_EXCLUDE image:*busybox*"),
    ]
    everything = settings.model_copy(update={"scan_exclude": ("image:*",)})
    all_out = resolve_images(event_for(JOB_ID), everything)
    assert all_out.found and not all_out.images and all_out.note == "every image is excluded by SCAN_EXCLUDE"


def test_a_resource_excluded_by_group_is_not_read(settings: Settings, sim: ArmSimulator) -> None:
    excluding = settings.model_copy(update={"scan_exclude": ("rg:*",)})
    resolved = resolve_images(event_for(GROUP_ID), excluding)
    assert not resolved.found and resolved.note is not None and resolved.note.startswith("excluded by SCAN_EXCLUDE rg:")
