"""The app's Azure credential and ARM clients, built from settings, cached per process, with no hidden retries.

ARM errors leave the activities as `ArmError` subclasses whose message starts with a stable marker, so that the
orchestration (which sees only the failure text) can tell them apart:
`arm-retryable status=429 code=TooManyRequests retry_after_s=30: <message>` and
`aci-quota-reached status=400 code=ContainerGroupQuotaReached retry_after_s=-: <message>`.
The SDK itself retries only broken connections, once; 429 and 5xx go straight back to the orchestration's retry
options (and Retry-After is surfaced, never slept on inside an activity).

Which error goes where (`classify`):
- code `ContainerGroupQuotaReached` (ACI answers it with 400 or 409), or "not available in the location" (no
  capacity in the region): `ScannerQuotaError`, the orchestration waits and creates again;
- 408, 429, 500, 502, 503, 504 and 409 with a transient conflict code: `ArmRetryableError`, the retry policy;
- anything else (401, 403, 400 that is not quota, 404 that is not an answer, other 409s): `ArmError`, not
  retryable. A registered ARM activity (`failing_fast`) returns it as a `non_retryable_error` answer at once instead
  of raising it, so the orchestration fails on the first attempt instead of five (orchestrators.calls.checked).
Connection errors are not `HttpResponseError`s: they propagate unchanged and keep the retry policy.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from activities import names
from core.redaction import redact, secret_values
from core.settings import Settings, get_settings

RETRYABLE_MARKER = "arm-retryable"
QUOTA_MARKER = names.ACI_QUOTA_ERROR_MARKER
FATAL_MARKER = "arm-error"
QUOTA_CODES = frozenset({"ContainerGroupQuotaReached", "QuotaExceeded", "StandardCoresQuotaExceeded"})
"""Quota refusals, by ARM error code whatever the status: ACI answers ContainerGroupQuotaReached with 400 in the
captured errors (MicrosoftDocs/azure-docs issue 51738; Microsoft's troubleshooting article on it), 409 elsewhere."""
CAPACITY_FAILURE = re.compile(r"not available in the location", re.IGNORECASE)
"""ACI's "ServiceUnavailable: The requested resource is not available in the location ...": no capacity in the
region right now. As a create's answer it waits like a quota refusal; as a late provisioning failure see
activities.aci_scanner."""
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CONFLICT_CODES = frozenset({"Conflict", "ContainerGroupTransitioning", "AnotherOperationInProgress"})
SDK_RETRY_OPTIONS: dict[str, Any] = {
    "retry_total": 1,
    "retry_connect": 1,
    "retry_read": 1,
    "retry_status": 0,  # 429/5xx are the orchestration's to retry
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 2,
    "connection_timeout": 10,
    "read_timeout": 60,
}
MAX_MESSAGE_CHARS = 500

ClientT = TypeVar("ClientT")
_cache: dict[tuple[str, ...], Any] = {}
_cache_lock = threading.RLock()  # a client build takes the credential from the same cache


class ArmError(RuntimeError):
    """An ARM request failed; `retryable` says whether trying again later can help."""

    marker = FATAL_MARKER
    retryable = False

    def __init__(self, status: int | None, code: str | None, message: str, retry_after_s: int | None = None) -> None:
        self.status, self.code, self.retry_after_s = status, code, retry_after_s
        self.detail = message[:MAX_MESSAGE_CHARS]
        after = "-" if retry_after_s is None else str(retry_after_s)
        super().__init__(f"{self.marker} status={status} code={code} retry_after_s={after}: {self.detail}")


class ArmRetryableError(ArmError):
    """Throttling (429, with Retry-After when ARM sent one) or a transient server error (5xx, 408)."""

    marker = RETRYABLE_MARKER
    retryable = True


class ScannerQuotaError(ArmRetryableError):
    """ACI refused a new container group because a regional quota (groups, StandardCores, ...) is used up."""

    marker = QUOTA_MARKER


def _retry_after(error: HttpResponseError) -> int | None:
    headers = getattr(error.response, "headers", None) or {}
    raw = headers.get("Retry-After")  # azure-core's response headers are case-insensitive
    if raw and raw.strip().isdigit():
        return int(raw.strip())
    return None


def error_message(error: HttpResponseError) -> str:
    """ARM's own error message when the response carried one, else the SDK's message."""
    return error.error.message if error.error is not None and error.error.message else str(error.message)


def classify(error: HttpResponseError) -> ArmError:
    """The activity-level error for an SDK `HttpResponseError` (retryable, quota or fatal)."""
    status = error.status_code
    code = error.error.code if error.error is not None else None
    message = error_message(error)
    if code in QUOTA_CODES or CAPACITY_FAILURE.search(message):
        return ScannerQuotaError(status, code, message, _retry_after(error))
    if status in RETRYABLE_STATUSES or (status == 409 and code in TRANSIENT_CONFLICT_CODES):
        return ArmRetryableError(status, code, message, _retry_after(error))
    return ArmError(status, code, message)


ActivityFunction = Callable[[Any], dict[str, Any]]


def failing_fast(function: ActivityFunction) -> ActivityFunction:
    """`function`, answering a non-retryable `ArmError` at once as `{NON_RETRYABLE_ERROR_KEY: {...}}`.

    Raised, such an error would be tried ACTIVITY_MAX_ATTEMPTS times over about a minute (the durable retry options
    of Python cannot filter by error). Answered, the orchestration raises it itself after the first attempt
    (orchestrators.calls.checked), on the same failure path. Retryable errors (quota, 429, 5xx, connection) still
    raise. The message is blanked of the settings' secrets, as `scrubbing_secrets` does for raised errors.
    """

    @functools.wraps(function)
    def run(payload: Any) -> dict[str, Any]:
        try:
            return function(payload)
        except ArmError as error:
            if error.retryable:
                raise
            return non_retryable_answer(error, _settings_secrets())

    return run


def non_retryable_answer(error: ArmError, secrets: list[str]) -> dict[str, Any]:
    """The answer of an activity whose ARM request failed in a way that retrying cannot fix."""
    return {
        names.NON_RETRYABLE_ERROR_KEY: {
            "status": error.status,
            "code": error.code,
            "message": redact(str(error), secrets),
        }
    }


def _settings_secrets() -> list[str]:
    try:
        return secret_values(get_settings())
    except ValueError:
        return []


def arm_scope(settings: Settings) -> str:
    """The token scope of the settings' ARM endpoint, e.g. https://management.azure.com/.default."""
    return f"{str(settings.arm_endpoint).rstrip('/')}/.default"


def _cached(key: tuple[str, ...], build: Callable[[], ClientT]) -> ClientT:
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build()
        client: ClientT = _cache[key]
        return client


def credential(settings: Settings) -> TokenCredential:
    """DefaultAzureCredential (managed identity in Azure Functions), for AZURE_CLIENT_ID's identity when set."""
    client_id = str(settings.azure_client_id) if settings.azure_client_id else ""

    def build() -> TokenCredential:
        if client_id:
            return DefaultAzureCredential(managed_identity_client_id=client_id)
        return DefaultAzureCredential()

    return _cached(("credential", client_id), build)


def _client_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "base_url": str(settings.arm_endpoint).rstrip("/"),
        "credential_scopes": [arm_scope(settings)],
        **SDK_RETRY_OPTIONS,
    }


def container_instances(settings: Settings, subscription_id: str | None = None) -> ContainerInstanceManagementClient:
    """The ACI client for `subscription_id` (default: the scanner's subscription)."""
    subscription = subscription_id or str(settings.azure_subscription_id)
    key = ("aci", str(settings.arm_endpoint), subscription, str(settings.azure_client_id or ""))
    return _cached(
        key,
        lambda: ContainerInstanceManagementClient(credential(settings), subscription, **_client_kwargs(settings)),
    )


def container_apps(settings: Settings, subscription_id: str | None = None) -> ContainerAppsAPIClient:
    """The Container Apps client for `subscription_id` (default: the scanner's subscription)."""
    subscription = subscription_id or str(settings.azure_subscription_id)
    key = ("aca", str(settings.arm_endpoint), subscription, str(settings.azure_client_id or ""))
    return _cached(key, lambda: ContainerAppsAPIClient(credential(settings), subscription, **_client_kwargs(settings)))


def reset_cache() -> None:
    """Forget every cached client (tests that point the process at a new simulator)."""
    with _cache_lock:
        _cache.clear()
