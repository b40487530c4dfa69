"""Scanner group activities on the real ACI SDK client against the ARM simulator, uploads landing in Azurite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import ContainerClient

from activities import clients
from activities.aci_scanner import (
    CreateScannerGroupRequest,
    ScannerGroupCollision,
    create_scanner_group,
    create_scanner_group_activity,
    delete_scanner_group,
    delete_scanner_group_activity,
    get_scanner_logs,
    get_scanner_state,
    get_scanner_state_activity,
    list_scanner_group_infos,
    list_scanner_groups,
)
from activities.clients import ArmRetryableError, ScannerQuotaError
from activities.names import NON_RETRYABLE_ERROR_KEY
from activities.storage_clients import META_INSTANCE, uploads_container_of
from core.naming import scanner_group_name
from core.redaction import redact
from core.settings import Settings, get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import point_process_at, settings_env, settings_for
from devhost.azurite import Azurite
from devhost.clock import VirtualClock

pytestmark = pytest.mark.azurite

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
INSTANCE = "scan-0123456789abcdef0123456789abcdef"
GROUP = scanner_group_name(INSTANCE)
NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7"
SCENARIO = Scenario.model_validate(
    {
        "settings": {"ARMSIM_PROVISIONING_DELAY_S": "20"},
        "scans": {
            "default": {"result": "ok", "duration_s": 90, "vulnerabilities": {"HIGH": 1, "LOW": 2}},
            "redis:7": {"result": "deny", "duration_s": 90, "vulnerabilities": {"CRITICAL": 2}},
        },
    }
)


@pytest.fixture
def settings(sim: ArmSimulator, azurite: Azurite) -> Settings:
    return settings_for(sim, azurite.connection_string)


@pytest.fixture
def uploads(settings: Settings, azurite: Azurite) -> ContainerClient:
    """The uploads container of GROUP, with the app's (full) access."""
    return ContainerClient.from_connection_string(azurite.connection_string, uploads_container_of(settings, GROUP))


def request(images: list[str], instance: str = INSTANCE, prefix: str | None = None) -> CreateScannerGroupRequest:
    return CreateScannerGroupRequest(
        instance_id=instance,
        group_name=scanner_group_name(instance),
        images=images,
        results_prefix=prefix or instance,
        created_at=START,
    )


def read_json(uploads: ContainerClient, name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(uploads.download_blob(name).readall())
    return loaded


def test_a_three_minute_scan_end_to_end_within_the_request_budget(
    sim: ArmSimulator, settings: Settings, clock: VirtualClock, uploads: ContainerClient
) -> None:
    created = create_scanner_group(settings, request([NGINX, REDIS]))
    assert created.created and created.exists and created.provisioning_state == "Pending"
    assert created.instance_id == INSTANCE
    for offset in (20, 60, 140):  # the orchestration's backoff: 20 s, then doubling
        clock.advance_to(START + timedelta(seconds=offset))
        state = get_scanner_state(settings, GROUP)
        assert state.container is not None
        assert state.container.state in ("Waiting", "Running")
    clock.advance_to(START + timedelta(seconds=260))
    done = get_scanner_state(settings, GROUP)
    assert done.state == "Succeeded" and done.container is not None
    assert (done.container.state, done.container.exit_code, done.container.restart_count) == ("Terminated", 0, 0)
    assert done.container.finish_time == START + timedelta(seconds=200)

    status0 = read_json(uploads, f"{INSTANCE}/0/status.json")
    assert status0["image"] == NGINX and status0["result"] == "ok" and status0["exit_code"] == 0
    assert status0["digest"] == ""  # the upload contract: the app reads RepoDigests from scanresult.json
    sarif1: Any = read_json(uploads, f"{INSTANCE}/1/report.sarif.json")
    assert read_json(uploads, f"{INSTANCE}/1/status.json")["result"] == "deny"
    rules = sarif1["runs"][0]["tool"]["driver"]["rules"]
    assert [r["properties"]["severity"] for r in rules] == [5, 5]  # two CRITICAL findings: Qualys level 5
    assert b"Vulnerability report received" in uploads.download_blob(f"{INSTANCE}/0/scan.log").readall()

    logs = get_scanner_logs(settings, GROUP, tail=5)
    assert logs.exists and logs.log is not None and "exiting with code 0" in logs.log
    assert delete_scanner_group(settings, GROUP) is True
    stats = sim.stats()
    assert stats["by_group"][GROUP] <= 10  # GET + PUT + 4 polls + logs + DELETE
    assert stats["by_group"][GROUP] == 8
    assert stats["groups"] == {"created": 1, "deleted": 1, "remaining": 0}
    assert stats["scans"] == {"images_started": 2}
    assert stats["upload_failures"] == 0


def test_secrets_go_to_secure_values_and_never_come_back(sim: ArmSimulator, settings: Settings) -> None:
    create_scanner_group(settings, request([NGINX]))
    key = next(iter(sim.state._groups))
    stored = sim.state._groups[key].body["properties"]["containers"][0]["properties"]["environmentVariables"]
    secure = {v["name"] for v in stored if "secureValue" in v}
    assert {"RESULTS_SAS_URL", "QUALYS_ACCESS_TOKEN"} <= secure
    shown = json.dumps(sim.state._groups[key].view(START))
    assert "qualys-token-for-tests" not in shown and "sig=" not in shown


def test_the_group_gets_a_write_only_sas_for_its_own_uploads_container(
    sim: ArmSimulator, settings: Settings, uploads: ContainerClient
) -> None:
    create_scanner_group(settings, request([NGINX]))
    key = next(iter(sim.state._groups))
    stored = sim.state._groups[key].body["properties"]["containers"][0]["properties"]["environmentVariables"]
    sas_url = urlsplit(next(v["secureValue"] for v in stored if v["name"] == "RESULTS_SAS_URL"))
    query = parse_qs(sas_url.query)
    assert sas_url.path.endswith(f"/{uploads.container_name}") and uploads.container_name != settings.uploads_container
    assert (query["sr"], query["sp"]) == (["c"], ["cw"])
    assert uploads.get_container_properties().metadata[META_INSTANCE] == INSTANCE


def test_create_is_idempotent_for_the_same_instance(sim: ArmSimulator, settings: Settings) -> None:
    first = create_scanner_group(settings, request([NGINX]))
    again = create_scanner_group(settings, request([NGINX]))
    assert first.created and again.created is False and again.exists
    stats = sim.stats()
    assert stats["groups"]["created"] == 1 and stats["by_method"]["PUT"] == 1


def test_a_same_named_group_of_another_instance_is_never_taken_over(sim: ArmSimulator, settings: Settings) -> None:
    create_scanner_group(settings, request([NGINX]))
    foreign = request([NGINX]).model_copy(update={"instance_id": "scan-someone-else"})
    with pytest.raises(ScannerGroupCollision):
        create_scanner_group(settings, foreign)


def test_delete_of_a_missing_group_is_success(sim: ArmSimulator, settings: Settings) -> None:
    assert delete_scanner_group(settings, "qscan-never-created") is False
    assert get_scanner_state(settings, "qscan-never-created").exists is False
    assert get_scanner_logs(settings, "qscan-never-created").exists is False


def test_throttled_create_surfaces_retry_after_and_a_retry_succeeds(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("PUT", r"/containerGroups/qscan-", 429, retry_after=30)
    with pytest.raises(ArmRetryableError) as caught:
        create_scanner_group(settings, request([NGINX]))
    assert caught.value.retry_after_s == 30 and "retry_after_s=30" in str(caught.value)
    assert sim.stats()["by_method"]["PUT"] == 1  # no hidden SDK retry
    assert create_scanner_group(settings, request([NGINX])).created


def test_server_errors_on_poll_and_delete_are_retryable(sim: ArmSimulator, settings: Settings) -> None:
    create_scanner_group(settings, request([NGINX]))
    sim.inject("GET", r"/containerGroups/qscan-[^/]+$", 500)
    with pytest.raises(ArmRetryableError) as caught:
        get_scanner_state(settings, GROUP)
    assert caught.value.status == 500
    sim.inject("DELETE", r"/containerGroups/", 503)
    with pytest.raises(ArmRetryableError):
        delete_scanner_group(settings, GROUP)
    assert delete_scanner_group(settings, GROUP) is True


def test_quota_refusal_is_a_distinct_retryable_error(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("PUT", r"/containerGroups/", 409)
    with pytest.raises(ScannerQuotaError) as caught:
        create_scanner_group(settings, request([NGINX]))
    assert caught.value.retryable and caught.value.code == "ContainerGroupQuotaReached"
    assert str(caught.value).startswith("aci-quota-reached status=409")


def test_real_quota_exhaustion_from_the_scenario_limit(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    limited = SCENARIO.model_copy(update={"settings": {"ARMSIM_MAX_CONTAINER_GROUPS": "1"}})
    with ArmSimulator(limited, clock=clock) as sim:
        point_process_at(sim, monkeypatch)
        clients.reset_cache()
        settings = settings_for(sim, azurite.connection_string)
        create_scanner_group(settings, request([NGINX], instance="scan-a"))
        with pytest.raises(ScannerQuotaError):
            create_scanner_group(settings, request([NGINX], instance="scan-b"))
        assert delete_scanner_group(settings, scanner_group_name("scan-a")) is True
        with pytest.raises(ScannerQuotaError):  # a deleting group still counts until its deletion completes
            create_scanner_group(settings, request([NGINX], instance="scan-b"))
        clock.advance(timedelta(seconds=10))
        assert create_scanner_group(settings, request([NGINX], instance="scan-b")).created
    clients.reset_cache()


def test_list_for_the_janitor_shows_owner_and_creation_time(sim: ArmSimulator, settings: Settings) -> None:
    create_scanner_group(settings, request([NGINX], instance="scan-one"))
    create_scanner_group(settings, request([REDIS], instance="scan-two"))
    listed = {g.name: g for g in list_scanner_groups(settings)}
    assert set(listed) == {scanner_group_name("scan-one"), scanner_group_name("scan-two")}
    one = listed[scanner_group_name("scan-one")]
    assert one.instance_id == "scan-one" and one.created_at == START and one.state == "Pending"
    infos = {i.name: i for i in list_scanner_group_infos(settings)}
    assert infos[scanner_group_name("scan-two")].instance_id == "scan-two"


def test_registered_activity_takes_and_returns_json(
    sim: ArmSimulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env(sim, azurite.connection_string).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        payload = {"instance_id": INSTANCE, "group_name": GROUP, "images": [NGINX], "results_prefix": INSTANCE}
        output = create_scanner_group_activity(payload)
    finally:
        get_settings.cache_clear()
    assert output["created"] is True and output["group_name"] == GROUP
    json.dumps(output)


def test_log_redaction_blanks_sas_signatures() -> None:
    text = "PUT https://acct.blob.core.windows.net/scan-uploads/x?sv=2021&sig=abc%2Fdef&se=1 failed"
    assert "abc" not in redact(text) and "sig=REDACTED" in redact(text)


def test_quota_refusal_is_classified_by_its_code_at_status_400(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("PUT", r"/containerGroups/", 400, code="ContainerGroupQuotaReached")
    with pytest.raises(ScannerQuotaError) as caught:
        create_scanner_group(settings, request([NGINX]))
    assert str(caught.value).startswith("aci-quota-reached status=400 code=ContainerGroupQuotaReached")
    assert "quota 'StandardCores' exceeded" in str(caught.value)


def test_a_late_capacity_failure_is_its_own_answer(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    late = SCENARIO.model_copy(update={"settings": {"ARMSIM_CAPACITY_FAILURES": "1"}})
    with ArmSimulator(late, clock=clock) as sim:
        point_process_at(sim, monkeypatch)
        clients.reset_cache()
        settings = settings_for(sim, azurite.connection_string)
        assert create_scanner_group(settings, request([NGINX])).created
        assert get_scanner_state(settings, GROUP).capacity_failure is None  # not yet: the PUT succeeded
        clock.advance(timedelta(seconds=20))
        state = get_scanner_state(settings, GROUP)
        assert state.provisioning_state == "Failed"
        assert state.capacity_failure is not None
        assert state.capacity_failure.startswith("ServiceUnavailable: The requested resource is not available")
        assert delete_scanner_group(settings, GROUP) is True  # 202: deletion started
    clients.reset_cache()


def test_registered_arm_activities_answer_non_retryable_errors_at_once(
    sim: ArmSimulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env(sim, azurite.connection_string).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        sim.inject("GET", r"/containerGroups/", 403, code="AuthorizationFailed")
        answer = get_scanner_state_activity({"group_name": GROUP})
        assert answer[NON_RETRYABLE_ERROR_KEY]["status"] == 403
        assert answer[NON_RETRYABLE_ERROR_KEY]["message"].startswith("arm-error status=403 code=AuthorizationFailed")
        sim.inject("DELETE", r"/containerGroups/", 404, code="ResourceGroupNotFound")
        assert delete_scanner_group_activity({"group_name": GROUP}) == {"group_name": GROUP, "deleted": False}
        sim.inject("GET", r"/containerGroups/", 429, retry_after=3)
        with pytest.raises(ArmRetryableError):  # throttling keeps the retry policy
            get_scanner_state_activity({"group_name": GROUP})
        assert get_scanner_state_activity({"group_name": GROUP})["exists"] is False
    finally:
        get_settings.cache_clear()


def test_a_create_refused_for_capacity_waits_like_a_quota_refusal(sim: ArmSimulator, settings: Settings) -> None:
    sim.inject("PUT", r"/containerGroups/", 503, code="ServiceUnavailable")  # generic text: transient, retried
    with pytest.raises(ArmRetryableError) as transient:
        create_scanner_group(settings, request([NGINX]))
    assert not isinstance(transient.value, ScannerQuotaError)
    capacity_text = "The requested resource is not available in the location 'westeurope' at this moment."
    sim.inject("PUT", r"/containerGroups/", 503, code="ServiceUnavailable", message=capacity_text)
    with pytest.raises(ScannerQuotaError) as capacity:
        create_scanner_group(settings, request([NGINX]))
    assert "not available in the location" in str(capacity.value)
