"""Helpers for tests that point the real Azure SDK clients at an `ArmSimulator` (dev/test only)."""

from __future__ import annotations

from typing import Any, Protocol

from core.settings import Settings, load_settings
from devhost.armsim.server import ArmSimulator

SUBSCRIPTION_ID = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
SCANNER_RESOURCE_GROUP = "rg-scanner"
APPS_RESOURCE_GROUP = "demo-apps"


class EnvSetter(Protocol):
    """The part of pytest's MonkeyPatch that sets environment variables."""

    def setenv(self, name: str, value: str, prepend: str | None = None) -> None: ...

    def delenv(self, name: str, raising: bool = True) -> None: ...


def point_process_at(sim: ArmSimulator, env: EnvSetter) -> None:
    """Set the simulator's env vars (ARM endpoint, CA bundle, managed identity) and clear competing credentials."""
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT"):
        env.delenv(name, raising=False)
    for name, value in sim.env().items():
        env.setenv(name, value)


def resource_id(provider_type: str, name: str, resource_group: str = APPS_RESOURCE_GROUP) -> str:
    """An ARM id in the test subscription, e.g. resource_id("Microsoft.App/jobs", "nightly")."""
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{resource_group}/providers/{provider_type}/{name}"


def sdk_kwargs(sim: ArmSimulator) -> dict[str, Any]:
    """Keyword arguments that point an azure-mgmt client at the simulator, with no hidden retries."""
    return {"base_url": sim.base_url, "credential_scopes": [f"{sim.base_url}/.default"], "retry_total": 0}


BASE_APP_SETTINGS: dict[str, str] = {
    "QUALYS_POD": "US2",
    "QUALYS_ACCESS_TOKEN": "qualys-token-for-tests",
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID,
    "SCANNER_RESOURCE_GROUP": SCANNER_RESOURCE_GROUP,
    "SCANNER_LOCATION": "westeurope",
}
"""The required settings every test app gets (the token is a fake, marked as such)."""


def settings_env(
    sim: ArmSimulator, storage_connection: str = "UseDevelopmentStorage=true", **overrides: str
) -> dict[str, str]:
    """The app's environment for reaching `sim` for ARM (and `storage_connection` for Blob/Table)."""
    return {
        **BASE_APP_SETTINGS,
        "AzureWebJobsStorage": storage_connection,
        "ARM_ENDPOINT": sim.base_url,
        **overrides,
    }


def settings_for(
    sim: ArmSimulator, storage_connection: str = "UseDevelopmentStorage=true", **overrides: str
) -> Settings:
    """Settings built from `settings_env`; `overrides` by environment variable name."""
    return load_settings(settings_env(sim, storage_connection, **overrides))
