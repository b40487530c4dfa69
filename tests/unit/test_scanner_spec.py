"""core.scanner_spec: the scanner group's shape, secrets only as secure values, tags and the per-image time limit."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from core.scanner_spec import (
    KILL_GRACE_SECONDS,
    MIN_PER_IMAGE_SECONDS,
    SCANNER_COMMAND,
    SCRIPT_FILE_NAME,
    SCRIPT_MOUNT_PATH,
    EnvironmentVariableSpec,
    ScannerGroupSpec,
    ScannerSettings,
    build_scanner_group_spec,
    load_scan_script,
    min_scan_timeout_seconds,
    per_image_timeout_seconds,
)
from core.settings import Settings, SettingsError, load_settings

TOKEN = "qualys-token-secret-value"
CLIENT_ID = "qualys-client-id-value"
CLIENT_SECRET = "qualys-client-secret-value"
SAS_URL = "https://acct.blob.core.windows.net/scan-uploads?sv=2023-11-03&sp=cw&sig=SIGNATURE%2Bvalue"
IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-scan/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-scanner"
)
IDENTITY_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
IMAGES = ["docker.io/library/nginx:1.27", "myregistry.azurecr.io/team/app@sha256:" + "ab" * 32]
CREATED = datetime(2026, 10, 2, 8, 0, 0, 123456, tzinfo=UTC)
BASE_ENV = {
    "QUALYS_POD": "US2",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "SCANNER_RESOURCE_GROUP": "rg-scan",
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def make_settings(**overrides: str) -> Settings:
    return load_settings({**BASE_ENV, "QUALYS_ACCESS_TOKEN": TOKEN, **overrides})


def build(settings: Settings | None = None, images: list[str] | None = None, **kwargs: object) -> ScannerGroupSpec:
    arguments: dict[str, object] = {
        "group_name": "qscan-0123456789abcdef01234567",
        "images": IMAGES if images is None else images,
        "settings": settings or make_settings(),
        "results_sas_url": SecretStr(SAS_URL),
        "results_prefix": "scan-abc",
        "instance_id": "scan-abc",
        "created_at": CREATED,
        "script_text": "#!/bin/bash\necho scan\n",
        **kwargs,
    }
    return build_scanner_group_spec(**arguments)  # type: ignore[arg-type]


def plain_env(spec: ScannerGroupSpec) -> dict[str, str]:
    return {item.name: item.value for item in spec.container.environment if item.value is not None}


def secure_env(spec: ScannerGroupSpec) -> dict[str, str]:
    return {
        item.name: item.secure_value.get_secret_value()
        for item in spec.container.environment
        if item.secure_value is not None
    }


def test_the_group_runs_the_mounted_script_once_and_never_restarts() -> None:
    spec = build(make_settings(SCANNER_CPU="2", SCANNER_MEMORY_GB="4", QSCANNER_IMAGE="docker.io/library/bash:5"))

    assert (spec.restart_policy, spec.os_type, spec.location) == ("Never", "Linux", "westeurope")
    assert spec.container.command == SCANNER_COMMAND == ("/bin/bash", f"{SCRIPT_MOUNT_PATH}/{SCRIPT_FILE_NAME}")
    assert (spec.container.image, spec.container.cpu, spec.container.memory_gb) == ("docker.io/library/bash:5", 2, 4)
    (mount,) = spec.container.volume_mounts
    (volume,) = spec.volumes
    assert (mount.name, mount.mount_path, mount.read_only) == (volume.name, SCRIPT_MOUNT_PATH, True)
    encoded = volume.secret_files_base64()[SCRIPT_FILE_NAME]
    assert base64.b64decode(encoded).decode() == "#!/bin/bash\necho scan\n"


def test_the_contract_variables_are_set() -> None:
    spec = build(make_settings(SCAN_TYPES="os,sca", QSCANNER_VERSION="4.8.0-2"))

    env = plain_env(spec)
    assert env["SCAN_IMAGES"] == "\n".join(IMAGES)
    assert env["QUALYS_POD"] == "US2"
    assert env["SCAN_TYPES"] == "os,sca"
    assert env["QSCANNER_VERSION"] == "4.8.0-2"
    assert env["QSCANNER_MODE"] == "get-report"
    assert env["RESULTS_PREFIX"] == "scan-abc"
    assert env["SCAN_TIMEOUT_PER_IMAGE"] == str(spec.per_image_timeout_seconds)
    assert (env["QSCANNER_REPORT_FORMATS"], env["QSCANNER_SBOM_FORMAT"]) == ("sarif,json", "spdx")
    assert not {"QSCANNER_DOWNLOAD_URL", "QSCANNER_SHA256", "POLICY_TAGS", "AZURE_CLIENT_ID"} & set(env)
    assert spec.images == tuple(IMAGES)


def test_optional_variables_appear_when_configured() -> None:
    settings = make_settings(
        QSCANNER_DOWNLOAD_URL="https://downloads.example.com/qscanner.tar.gz",
        QSCANNER_SHA256="AB" * 32,
        QSCANNER_MODE="evaluate-policy",
        POLICY_TAGS="prod gate",
        SCANNER_IDENTITY_RESOURCE_ID=IDENTITY,
        SCANNER_IDENTITY_CLIENT_ID=IDENTITY_CLIENT_ID,
    )
    spec = build(settings)

    env = plain_env(spec)
    assert env["QSCANNER_DOWNLOAD_URL"] == "https://downloads.example.com/qscanner.tar.gz"
    assert env["QSCANNER_SHA256"] == "ab" * 32
    assert (env["QSCANNER_MODE"], env["POLICY_TAGS"]) == ("evaluate-policy", "prod gate")
    assert env["AZURE_CLIENT_ID"] == IDENTITY_CLIENT_ID
    assert spec.identity_resource_id == IDENTITY


def test_policy_tags_are_left_out_outside_evaluate_policy_mode() -> None:
    assert "POLICY_TAGS" not in plain_env(build(make_settings(POLICY_TAGS="prod")))


def test_secrets_are_only_secure_values() -> None:
    settings = make_settings(QUALYS_CLIENT_ID=CLIENT_ID, QUALYS_CLIENT_SECRET=CLIENT_SECRET)
    spec = build(settings)

    assert secure_env(spec) == {
        "QUALYS_ACCESS_TOKEN": TOKEN,
        "QUALYS_CLIENT_ID": CLIENT_ID,
        "QUALYS_CLIENT_SECRET": CLIENT_SECRET,
        "RESULTS_SAS_URL": SAS_URL,
    }
    visible = " ".join([*plain_env(spec).values(), *spec.container.command, *spec.tags.values(), spec.name])
    for secret in (TOKEN, CLIENT_ID, CLIENT_SECRET, SAS_URL, "SIGNATURE"):
        assert secret not in visible
        assert secret not in repr(spec)
        assert secret not in spec.model_dump_json()


def test_unset_credentials_are_not_passed() -> None:
    settings = load_settings({**BASE_ENV, "QUALYS_CLIENT_ID": CLIENT_ID, "QUALYS_CLIENT_SECRET": CLIENT_SECRET})
    assert set(secure_env(build(settings))) == {"QUALYS_CLIENT_ID", "QUALYS_CLIENT_SECRET", "RESULTS_SAS_URL"}


def test_tags_tie_the_group_to_its_instance() -> None:
    spec = build(created_at=CREATED.astimezone(timezone(timedelta(hours=2))), script_text="a")
    other_script = build(script_text="b")

    assert spec.tags["qscan-instance"] == "scan-abc"
    assert spec.tags["qscan-managed"] == "true"
    assert spec.tags["qscan-created"] == "2026-10-02T08:00:00Z"
    assert spec.tags["qscan-script"] != other_script.tags["qscan-script"]
    assert all(len(value) <= 256 for value in spec.tags.values())


def test_a_naive_creation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(created_at=datetime(2026, 10, 2, 8, 0, 0))


@pytest.mark.parametrize("images", [[], ["nginx"], ["docker.io/library/nginx"], ["nginx;id"]])
def test_only_canonical_references_are_accepted(images: list[str]) -> None:
    with pytest.raises(ValueError):
        build(images=images)


def test_an_environment_variable_holds_exactly_one_value() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        EnvironmentVariableSpec(name="X", value="a", secure_value=SecretStr("b"))
    with pytest.raises(ValueError, match="exactly one"):
        EnvironmentVariableSpec(name="X")
    assert EnvironmentVariableSpec(name="X", secure_value=SecretStr("b")).secure


@pytest.mark.parametrize(
    ("scan_timeout", "count", "expected"),
    [(1800, 1, 1490), (1800, 3, 490), (1800, 10, 140), (600, 1, 470), (60, 1, 38), (60, 10, MIN_PER_IMAGE_SECONDS)],
    # without a minimum given: the old 30 s floor
)
def test_per_image_timeout_is_a_fair_share(scan_timeout: int, count: int, expected: int) -> None:
    assert per_image_timeout_seconds(scan_timeout, count) == expected


@given(st.integers(min_value=60, max_value=86_400), st.integers(min_value=1, max_value=60))
def test_per_image_limits_fit_the_scan_timeout_unless_the_floor_applies(scan_timeout: int, count: int) -> None:
    share = per_image_timeout_seconds(scan_timeout, count)
    assert share >= MIN_PER_IMAGE_SECONDS
    if share > MIN_PER_IMAGE_SECONDS:
        assert count * (share + KILL_GRACE_SECONDS) <= scan_timeout


def test_the_spec_uses_the_group_timeout_from_settings() -> None:
    spec = build(make_settings(SCAN_TIMEOUT="900", SCAN_TIMEOUT_PER_IMAGE="60"))
    assert spec.per_image_timeout_seconds == per_image_timeout_seconds(900, len(IMAGES)) == 350


def test_the_per_image_setting_is_a_floor_and_the_default_fits_a_large_image() -> None:
    assert build(make_settings()).per_image_timeout_seconds == 740  # (1800 - 300 - 2 * 10) // 2, above 600
    single = build(make_settings(), images=IMAGES[:1])
    assert single.per_image_timeout_seconds == 1490  # a smaller group gets its larger share
    assert per_image_timeout_seconds(600, 10, minimum=600) == 600


def test_format_settings_reach_the_scanner() -> None:
    spec = build(
        make_settings(QSCANNER_REPORT_FORMATS="SARIF", QSCANNER_SBOM_FORMAT="none", QSCANNER_VERSION="v4.9.1-3")
    )
    env = plain_env(spec)
    assert (env["QSCANNER_REPORT_FORMATS"], env["QSCANNER_SBOM_FORMAT"], env["QSCANNER_VERSION"]) == (
        "sarif",
        "none",
        "4.9.1-3",
    )


@given(st.integers(min_value=30, max_value=3000), st.integers(min_value=1, max_value=60))
def test_the_least_scan_timeout_is_exactly_enough(per_image: int, count: int) -> None:
    needed = min_scan_timeout_seconds(per_image, count)
    assert per_image_timeout_seconds(needed, count, minimum=0) >= per_image
    assert per_image_timeout_seconds(needed - 1, count, minimum=0) < per_image


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SCAN_TIMEOUT": "1519"}, "SCAN_TIMEOUT: must be at least 1520 s"),
        ({"MAX_IMAGES_PER_SCANNER_GROUP": "10"}, "SCAN_TIMEOUT: must be at least 6400 s"),
        ({"SCAN_TIMEOUT_PER_IMAGE": "1000"}, "SCAN_TIMEOUT: must be at least 2320 s"),
        ({"SCAN_TIMEOUT_PER_IMAGE": "29"}, "SCAN_TIMEOUT_PER_IMAGE"),
        ({"QSCANNER_REPORT_FORMATS": "table,gitlab"}, "QSCANNER_REPORT_FORMATS: must hold sarif or json"),
        ({"QSCANNER_REPORT_FORMATS": "sarif,pdf"}, "QSCANNER_REPORT_FORMATS"),
        ({"QSCANNER_SBOM_FORMAT": "json"}, "QSCANNER_SBOM_FORMAT"),
        ({"QSCANNER_VERSION": "4.8"}, "QSCANNER_VERSION"),
    ],
)
def test_inconsistent_scanner_settings_are_refused_with_a_clear_error(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        make_settings(**env)


def test_report_formats_without_sarif_or_json_are_fine_in_modes_without_a_report() -> None:
    assert make_settings(QSCANNER_MODE="inventory-only", QSCANNER_REPORT_FORMATS="table").qscanner_report_formats == (
        "table",
    )
    assert make_settings(SCAN_TIMEOUT="6400", MAX_IMAGES_PER_SCANNER_GROUP="10").scan_timeout == 6400


def test_the_app_settings_satisfy_the_scanner_protocol() -> None:
    settings: ScannerSettings = make_settings()  # checked by mypy
    assert settings.scanner_location == "westeurope"


def test_the_shipped_script_is_loadable() -> None:
    text = load_scan_script()
    assert text.startswith("#!/usr/bin/env bash")
    assert "RESULTS_SAS_URL" in text
