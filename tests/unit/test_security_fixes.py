"""Regression tests of the security audit's fixes in pure code (the findings are listed in docs/security.md)."""

from __future__ import annotations

import pytest

from core.images import InvalidImageRef, parse_image_ref
from core.settings import SettingsError, load_settings

CANARY = "CANARYsettingsValue0123456789"


@pytest.mark.parametrize("ref", ["registry.example.com:99999999999/x", "localhost:0/x", "a.b:65536/x", "[::1]:70000/x"])
def test_a_registry_port_outside_1_to_65535_is_refused(ref: str) -> None:
    with pytest.raises(InvalidImageRef, match="port must be 1-65535"):
        parse_image_ref(ref)


@pytest.mark.parametrize("ref", ["localhost:65535/x", "test:1/x", "[2001:db8::1]:5000/repo", "[2001:db8::1]/repo"])
def test_registry_ports_in_range_still_parse(ref: str) -> None:
    assert parse_image_ref(ref).registry == ref.rsplit("/", 1)[0]


def test_settings_errors_never_echo_a_value() -> None:
    bad = {
        "QUALYS_POD": CANARY,
        "QUALYS_CLIENT_ID": CANARY,
        "AZURE_SUBSCRIPTION_ID": CANARY,
        "SCANNER_RESOURCE_GROUP": CANARY + "/..",
        "SCANNER_LOCATION": CANARY + " !",
        "AzureWebJobsStorage": CANARY,
        "NOTIFY_WEBHOOK_URL": f"http://hooks.example.com/{CANARY}",
        "ARM_ENDPOINT": f"http://{CANARY}.example.com",
        "SMTP_USERNAME": CANARY + "\n",
        "SCAN_TIMEOUT": CANARY,
        "POLICY_TAGS": "-" + CANARY,
    }
    with pytest.raises(SettingsError) as raised:
        load_settings(bad)
    assert len(raised.value.problems) >= len(bad) - 1
    assert CANARY not in str(raised.value) and CANARY not in repr(raised.value.problems)


def test_an_account_key_upload_sas_allows_http_only_to_a_loopback_emulator() -> None:
    from activities.storage_clients import _sas_protocol

    assert _sas_protocol("http://127.0.0.1:10000/devstoreaccount1/scan-uploads-x") is None
    assert _sas_protocol("https://account.blob.core.windows.net/scan-uploads-x") == "https"
    assert _sas_protocol("http://account.blob.core.windows.net/scan-uploads-x") == "https"


def test_activity_errors_that_carry_a_secret_are_scrubbed_and_others_pass_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from activities.activity_registry import ActivityFailure, scrubbing_secrets
    from core.settings import get_settings

    token = "canary-token-9f3b2"
    for name, value in {
        "QUALYS_POD": "US2",
        "QUALYS_ACCESS_TOKEN": token,
        "AZURE_SUBSCRIPTION_ID": "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a",
        "SCANNER_RESOURCE_GROUP": "rg-scanner",
        "SCANNER_LOCATION": "westeurope",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:

        def leaks_directly(payload: object) -> dict[str, object]:
            raise RuntimeError(f"request failed: token={token} url=https://x/c?sv=1&sig=abcdef")

        def leaks_through_its_cause(payload: object) -> dict[str, object]:
            try:
                raise ValueError(f"inner {token}")
            except ValueError as inner:
                raise RuntimeError("outer, no secret here") from inner

        def ordinary(payload: object) -> dict[str, object]:
            raise LookupError("arm-retryable status=429 code=TooManyRequests retry_after_s=5: slow down")

        for function in (leaks_directly, leaks_through_its_cause):
            with pytest.raises(ActivityFailure) as caught:
                scrubbing_secrets(function)({})
            assert token not in str(caught.value) and "sig=abcdef" not in str(caught.value)
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
        with pytest.raises(LookupError, match="arm-retryable status=429"):
            scrubbing_secrets(ordinary)({})
    finally:
        get_settings.cache_clear()
