"""Settings: defaults, every bad variable named at once, secrets hidden, scan options JSON-able."""

from __future__ import annotations

import json

import pytest

from core.settings import QUALYS_POD_GATEWAYS, Settings, SettingsError, load_settings

SUBSCRIPTION = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
TOKEN = "qualys-token-do-not-log"
MINIMAL = {
    "QUALYS_POD": "us2",
    "QUALYS_ACCESS_TOKEN": TOKEN,
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION.upper(),
    "SCANNER_RESOURCE_GROUP": "rg-qscanner",
    "SCANNER_LOCATION": "West Europe",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def load(**overrides: str) -> Settings:
    return load_settings({**MINIMAL, **overrides})


def problems_of(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return dict(caught.value.problems)


def test_minimal_environment_gives_documented_defaults() -> None:
    settings = load()
    assert settings.qualys_pod == "US2"
    assert settings.qualys_gateway_url == QUALYS_POD_GATEWAYS["US2"]
    assert settings.azure_subscription_id == SUBSCRIPTION
    assert settings.scanner_location == "westeurope"
    assert settings.qscanner_version == "4.8.0-2"
    assert settings.qscanner_image == "mcr.microsoft.com/azurelinux/base/core:3.0"
    assert settings.scan_types == ("os", "sca", "secret")
    assert settings.scan_types_csv == "os,sca,secret"
    assert settings.qscanner_mode == "get-report"
    assert settings.scan_timeout == 1800
    assert settings.upload_sas_minutes == 45
    assert settings.max_concurrent_scanner_groups == 20
    assert settings.notify_severity_threshold == "HIGH"
    assert settings.resolve_digests is True
    assert settings.eventhub_connection == "EventHubConnection"
    assert settings.eventhub_consumer_group == "$Default"
    assert settings.storage.mode == "connection_string"
    assert not settings.storage.uses_identity
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.janitor_schedule == "0 */10 * * * *"


def test_empty_environment_names_every_required_variable() -> None:
    problems = problems_of({})
    for name in ("QUALYS_POD", "QUALYS_ACCESS_TOKEN", "AZURE_SUBSCRIPTION_ID", "SCANNER_RESOURCE_GROUP"):
        assert name in problems
    assert "SCANNER_LOCATION" in problems
    assert "AzureWebJobsStorage" in problems


def test_all_invalid_variables_are_reported_together_without_values() -> None:
    env = {
        **MINIMAL,
        "QUALYS_POD": "MARS1",
        "AZURE_SUBSCRIPTION_ID": "not-a-guid",
        "SCANNER_RESOURCE_GROUP": "bad/rg.",
        "QSCANNER_VERSION": "latest",
        "SCAN_TYPES": "os,viruses",
        "SCAN_TIMEOUT": "30",
        "MAX_CONCURRENT_SCANNER_GROUPS": "500",
        "NOTIFY_SEVERITY_THRESHOLD": "URGENT",
        "NOTIFY_WEBHOOK_URL": "http://hooks.example.com/secret-path",
        "QSCANNER_IMAGE": "Not An Image",
        "RESOLVE_DIGESTS": "perhaps",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    problems = dict(caught.value.problems)
    assert set(problems) >= {
        "QUALYS_POD",
        "AZURE_SUBSCRIPTION_ID",
        "SCANNER_RESOURCE_GROUP",
        "QSCANNER_VERSION",
        "SCAN_TYPES",
        "SCAN_TIMEOUT",
        "MAX_CONCURRENT_SCANNER_GROUPS",
        "NOTIFY_SEVERITY_THRESHOLD",
        "NOTIFY_WEBHOOK_URL",
        "QSCANNER_IMAGE",
        "RESOLVE_DIGESTS",
    }
    assert "secret-path" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"QUALYS_ACCESS_TOKEN": ""}, "QUALYS_ACCESS_TOKEN"),
        ({"QUALYS_ACCESS_TOKEN": "", "QUALYS_CLIENT_ID": "id"}, "QUALYS_CLIENT_SECRET"),
        ({"QSCANNER_MODE": "evaluate-policy"}, "POLICY_TAGS"),
        ({"QSCANNER_MODE": "evaluate-policy", "POLICY_TAGS": "--help"}, "POLICY_TAGS"),
        ({"NOTIFICATION_EMAIL": "ops@example.com"}, "SMTP_HOST"),
        ({"NOTIFICATION_EMAIL": "ops@example.com", "SMTP_HOST": "smtp.example.com"}, "SMTP_FROM"),
        ({"NOTIFICATION_EMAIL": "ops@example.com,not an address"}, "NOTIFICATION_EMAIL"),
        ({"UPLOAD_SAS_MINUTES": "10"}, "UPLOAD_SAS_MINUTES"),
        ({"SCAN_POLL_INITIAL_SECONDS": "300", "SCAN_POLL_MAX_SECONDS": "60"}, "SCAN_POLL_MAX_SECONDS"),
        ({"JANITOR_SCHEDULE": "*/10 * * * *"}, "JANITOR_SCHEDULE"),
        ({"ARM_ENDPOINT": "http://127.0.0.1:8443"}, "ARM_ENDPOINT"),
        ({"QSCANNER_SHA256": "abc"}, "QSCANNER_SHA256"),
        ({"EVENTHUB_CONNECTION": "Endpoint=sb://x/;SharedAccessKey=y"}, "EVENTHUB_CONNECTION"),
        ({"RESULTS_CONTAINER": "Scan_Reports"}, "RESULTS_CONTAINER"),
        ({"UPLOADS_CONTAINER": "u" * 39}, "UPLOADS_CONTAINER"),  # <prefix>-<24 hex> would pass 63 characters
        ({"UPLOADS_CONTAINER": "scan-uploads-"}, "UPLOADS_CONTAINER"),  # <prefix>-<hex> would have a double hyphen
        ({"SCANNER_IDENTITY_RESOURCE_ID": "/subscriptions/x"}, "SCANNER_IDENTITY_RESOURCE_ID"),
        ({"SCANNER_CPU": "2", "ACI_MAX_CORES": "1.5"}, "ACI_MAX_CORES"),  # not one scanner group would fit
        ({"ACI_MAX_CREATES_PER_5_MINUTES": "101"}, "ACI_MAX_CREATES_PER_5_MINUTES"),  # ACI's own limit is 100
        ({"ACI_MAX_CREATES_PER_HOUR": "0"}, "ACI_MAX_CREATES_PER_HOUR"),
    ],
)
def test_rules_that_span_or_shape_variables(overrides: dict[str, str], expected: str) -> None:
    assert expected in problems_of({**MINIMAL, **overrides})


def test_client_credentials_replace_the_token() -> None:
    settings = load(QUALYS_ACCESS_TOKEN="", QUALYS_CLIENT_ID="cid", QUALYS_CLIENT_SECRET="csecret")
    assert settings.qualys_access_token is None
    assert settings.qualys_client_secret is not None
    assert settings.qualys_client_secret.get_secret_value() == "csecret"


def test_secrets_never_show_in_repr_or_dump() -> None:
    settings = load(SMTP_PASSWORD="smtp-pass", NOTIFY_WEBHOOK_URL="https://hooks.example.com/xyz-secret")
    text = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (TOKEN, "smtp-pass", "xyz-secret", "UseDevelopmentStorage"):
        assert secret not in text


def test_identity_based_storage_derives_service_uris() -> None:
    env = {k: v for k, v in MINIMAL.items() if k != "AzureWebJobsStorage"}
    env |= {"AzureWebJobsStorage__accountName": "stqscan", "AzureWebJobsStorage__clientId": SUBSCRIPTION}
    storage = load_settings(env).storage
    assert storage.uses_identity
    assert storage.blob_service_uri == "https://stqscan.blob.core.windows.net"
    assert storage.table_service_uri == "https://stqscan.table.core.windows.net"
    assert storage.client_id == SUBSCRIPTION


def test_identity_storage_needs_table_uri_without_account_name() -> None:
    env = {k: v for k, v in MINIMAL.items() if k != "AzureWebJobsStorage"}
    env |= {"RESULTS_STORAGE_CONNECTION": "Results", "Results__blobServiceUri": "https://x.blob.core.windows.net"}
    assert "Results__tableServiceUri" in problems_of(env)


def test_loopback_webhook_may_use_http_and_values_are_parsed() -> None:
    settings = load(
        NOTIFY_WEBHOOK_URL="http://127.0.0.1:9000/hook",
        SCAN_TYPES=" OS , sca ,os",
        NOTIFICATION_EMAIL="a@example.com, b@example.org",
        SMTP_HOST="smtp.example.com",
        SMTP_FROM="scanner@example.com",
        RESOLVE_DIGESTS="false",
        SCAN_TIMEOUT="3600",
        QSCANNER_IMAGE="nginx",
    )
    assert settings.scan_types == ("os", "sca")
    assert settings.notification_email == ("a@example.com", "b@example.org")
    assert settings.resolve_digests is False
    assert settings.upload_sas_minutes == 75
    assert settings.qscanner_image == "docker.io/library/nginx:latest"


def test_scan_options_are_plain_json_without_secrets() -> None:
    options = load(SCAN_CACHE_HOURS="6", NOTIFY_SEVERITY_THRESHOLD="critical").scan_options()
    dumped = options.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped["scan_cache_hours"] == 6
    assert dumped["notify_severity_threshold"] == "CRITICAL"
    assert dumped["scan_types"] == ["os", "sca", "secret"]
    assert TOKEN not in json.dumps(dumped)


def test_settings_are_immutable() -> None:
    settings = load()
    with pytest.raises(ValueError, match="frozen"):
        settings.scan_timeout = 5  # type: ignore[misc]


def test_event_hub_binding_has_defaults_and_names_bad_variables() -> None:
    from core.trigger_bindings import load_event_hub_binding

    assert load_event_hub_binding({}).model_dump() == {
        "eventhub_name": "deployments",
        "eventhub_consumer_group": "$Default",
        "eventhub_connection": "EventHubConnection",
    }
    assert load_event_hub_binding({"EVENTHUB_NAME": " scans "}).eventhub_name == "scans"
    with pytest.raises(SettingsError) as caught:
        load_event_hub_binding({"EVENTHUB_CONNECTION": "Endpoint=sb://x/;Key=y"})
    assert [name for name, _ in caught.value.problems] == ["EVENTHUB_CONNECTION"]
    assert "Key=y" not in str(caught.value)


def test_janitor_schedule_is_read_at_indexing_with_its_default() -> None:
    from core.settings import DEFAULT_JANITOR_SCHEDULE
    from core.trigger_bindings import load_janitor_binding

    assert load_janitor_binding({}).janitor_schedule == DEFAULT_JANITOR_SCHEDULE
    assert load_janitor_binding({"JANITOR_SCHEDULE": "0 */5 * * * *"}).janitor_schedule == "0 */5 * * * *"
    with pytest.raises(SettingsError, match="JANITOR_SCHEDULE"):
        load_janitor_binding({"JANITOR_SCHEDULE": "*/10 * * * *"})


def test_the_quota_gate_budgets_reach_the_scan_options() -> None:
    options = load(SCANNER_CPU="2", ACI_MAX_CORES="10", ACI_MAX_CREATES_PER_5_MINUTES="50").scan_options()
    assert (options.scanner_cpu, options.aci_max_cores, options.aci_max_creates_per_5_minutes) == (2.0, 10.0, 50)
    assert options.aci_max_creates_per_hour == 300 and options.max_scanner_groups() == 5
