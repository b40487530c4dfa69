"""The Function App's settings match what the app reads; azd wiring (azure.yaml, main.parameters.json) is complete."""

from __future__ import annotations

import json
import re

from core.settings import Settings
from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT, bicep_file, literal, object_properties
from tests.infra.checkov_env import load_yaml

KEY_VAULT_REFERENCE = re.compile(r"'@Microsoft\.KeyVault\(SecretUri=\$\{\w+\.outputs\.secretUri\}\)'")
AZD_PLACEHOLDER = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}$")
PLATFORM_PREFIXES = ("AzureWebJobsStorage__", "EventHubConnection__", "APPLICATIONINSIGHTS_")
SECRET_SETTINGS = {
    "QUALYS_ACCESS_TOKEN",
    "QUALYS_CLIENT_ID",
    "QUALYS_CLIENT_SECRET",
    "SMTP_PASSWORD",
    "NOTIFY_WEBHOOK_URL",
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_TEAMS_URL",
    "NOTIFY_SLACK_URL",
}
REQUIRED_SETTINGS = SECRET_SETTINGS | {
    "QUALYS_POD",
    "AZURE_SUBSCRIPTION_ID",
    "SCANNER_RESOURCE_GROUP",
    "SCANNER_LOCATION",
    "QSCANNER_VERSION",
    "QSCANNER_IMAGE",
    "SCAN_TIMEOUT",
    "SCAN_CACHE_HOURS",
    "NOTIFICATION_EMAIL",
    "NOTIFY_SEVERITY_THRESHOLD",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_FROM",
    "SCANNER_IDENTITY_RESOURCE_ID",
    "SCANNER_IDENTITY_CLIENT_ID",
    "EVENTHUB_NAME",
    "EVENTHUB_CONSUMER_GROUP",
    "EVENTHUB_CONNECTION",
    "EventHubConnection__fullyQualifiedNamespace",
    "EventHubConnection__credential",
    "EventHubConnection__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AZURE_CLIENT_ID",
    "DURABLE_TASK_HUB",
    "RESULTS_CONTAINER",
    "UPLOADS_CONTAINER",
    "CACHE_TABLE",
    "SCANS_TABLE",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}


def _plain_settings() -> dict[str, str]:
    node = bicep_file("main.bicep").variables()["plainSettings"]
    return {key: (value.text or b"").decode() for key, value in object_properties(node)}


def _secret_settings() -> dict[str, str]:
    node = bicep_file("app/keyvault.bicep").outputs()["secretReferences"]
    return {key: (value.text or b"").decode() for key, value in object_properties(node)}


def test_every_setting_the_app_needs_is_set():
    names = set(_plain_settings()) | set(_secret_settings())
    assert REQUIRED_SETTINGS - names == set()


def test_every_app_setting_is_a_setting_of_the_app_or_the_platform():
    for name in set(_plain_settings()) | set(_secret_settings()):
        if not name.startswith(PLATFORM_PREFIXES):
            assert name.lower() in Settings.model_fields, f"{name} is not read by core.settings.Settings"


def test_secrets_are_key_vault_references_and_never_plain_settings():
    secrets = _secret_settings()
    assert set(secrets) == SECRET_SETTINGS
    for name, value in secrets.items():
        condition, reference = value.split(" ? '' : ")
        assert condition.startswith("empty("), name
        assert KEY_VAULT_REFERENCE.fullmatch(reference), f"{name}: {reference}"
    assert SECRET_SETTINGS.isdisjoint(_plain_settings())
    main_settings = bicep_file("main.bicep").variables()["appSettings"].text or b""
    assert main_settings.decode() == "union(plainSettings, keyVault.outputs.secretReferences)"


def test_connections_are_identity_based():
    settings = _plain_settings()
    assert "AzureWebJobsStorage" not in settings, "no storage connection string"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["EventHubConnection__credential"] == "'managedidentity'"
    assert settings["EVENTHUB_CONNECTION"] == "eventHubConnectionName"
    assert literal(bicep_file("main.bicep").variables()["eventHubConnectionName"]) == "EventHubConnection"
    client_id = "appIdentityClientId"
    for name in ("AzureWebJobsStorage__clientId", "EventHubConnection__clientId", "AZURE_CLIENT_ID"):
        assert settings[name] == client_id
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'ClientId=${appIdentityClientId};Authorization=AAD'"
    )
    text = json.dumps(settings)
    assert "AccountKey" not in text and "SharedAccessKey" not in text and "listKeys" not in text


def test_parameters_file_covers_main_bicep():
    document = json.loads((INFRA_DIR / "main.parameters.json").read_text(encoding="utf-8"))
    values = document["parameters"]
    parameters = bicep_file("main.bicep").parameters()
    assert set(values) <= set(parameters), "main.parameters.json names a parameter main.bicep does not have"
    required = {name for name, parameter in parameters.items() if parameter.default is None}
    assert required <= set(values), "azd must be able to fill every parameter without a default"
    for name, entry in values.items():
        assert AZD_PLACEHOLDER.match(entry["value"]), f"{name}: use an azd ${{VARIABLE}} placeholder"
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"


def test_azure_yaml_deploys_this_folder_as_a_python_function():
    azure_yaml = load_yaml(REPO_ROOT / "azure.yaml")
    assert azure_yaml["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    api = azure_yaml["services"]["api"]
    assert (api["project"], api["language"], api["host"]) == (".", "python", "function")
    function = bicep_file("app/function.bicep").declaration("functionApp")
    assert "'azd-service-name': 'api'" in (function.text("tags") or "")
