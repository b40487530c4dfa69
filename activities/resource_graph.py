"""Azure Resource Graph: one page of the sweep's query, with Resource Graph's throttling surfaced, never slept on.

The client is `azure-mgmt-resourcegraph`'s, built like the app's other ARM clients (same credential, endpoint and
no hidden retries of 429/5xx). A 429 comes back as a `throttled` answer with the seconds until the user's quota
window resets (`x-ms-user-quota-resets-after`), so the orchestration waits on a durable timer; every answer carries
the quota left (`x-ms-user-quota-remaining`) so the orchestration can wait before it runs out (core/sweep.py cites
the sources).
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, QueryResponse
from pydantic import BaseModel, ConfigDict, Field

from activities.clients import SDK_RETRY_OPTIONS, _cached, arm_scope, classify, credential
from core.resource_ids import clip
from core.settings import Settings
from core.sweep import (
    DEFAULT_RESETS_AFTER_S,
    PAGE_SIZE,
    QUOTA_REMAINING_HEADER,
    QUOTA_RESETS_AFTER_HEADER,
    SWEEP_QUERY,
    observed_from_row,
    quota_remaining,
    resets_after_seconds,
)
from core.workloads import Observed


class GraphPage(BaseModel):
    """One answer of the sweep query: rows (or a throttle), the next page's token and the quota headers."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Observed] = Field(default_factory=list)
    skipped: int = 0
    skip_token: str | None = None
    total: int | None = None
    throttled: bool = False
    quota_remaining: int | None = None
    resets_after_s: int | None = None


def resource_graph(settings: Settings) -> ResourceGraphClient:
    """The Resource Graph client (tenant-level API, no subscription in the client)."""
    key = ("resourcegraph", str(settings.arm_endpoint), str(settings.azure_client_id or ""))
    return _cached(
        key,
        lambda: ResourceGraphClient(
            credential(settings),
            base_url=str(settings.arm_endpoint).rstrip("/"),
            credential_scopes=[arm_scope(settings)],
            **SDK_RETRY_OPTIONS,
        ),
    )


def _quota(headers: Any) -> tuple[int | None, int | None]:
    headers = headers or {}
    return (
        quota_remaining(headers.get(QUOTA_REMAINING_HEADER)),
        resets_after_seconds(headers.get(QUOTA_RESETS_AFTER_HEADER)),
    )


def query_page(settings: Settings, subscriptions: list[str], skip_token: str | None) -> GraphPage:
    """One page (at most PAGE_SIZE rows) of SWEEP_QUERY over `subscriptions`, from `skip_token` when given.

    429 -> `throttled` (never raised); other errors are classified like every ARM error (activities.clients).
    A row that is not a workload is counted in `skipped` (logged by the caller), never fatal.
    """
    captured: dict[str, Any] = {}

    def keep(pipeline_response: PipelineResponse[Any, Any], deserialized: QueryResponse, _: Any) -> QueryResponse:
        captured["headers"] = pipeline_response.http_response.headers
        return deserialized

    request = QueryRequest(
        subscriptions=subscriptions,
        query=SWEEP_QUERY,
        options=QueryRequestOptions(top=PAGE_SIZE, skip_token=skip_token, result_format="objectArray"),
    )
    try:
        answer = resource_graph(settings).resources(request, cls=keep)
    except HttpResponseError as error:
        if error.status_code == 429:
            remaining, resets = _quota(getattr(error.response, "headers", None))
            return GraphPage(
                throttled=True, quota_remaining=remaining or 0, resets_after_s=resets or DEFAULT_RESETS_AFTER_S
            )
        raise classify(error) from error
    remaining, resets = _quota(captured.get("headers"))
    if not isinstance(answer.data, list):
        raise ValueError(f"Resource Graph answered data that is not a list: {clip(type(answer.data).__name__)}")
    rows: list[Observed] = []
    skipped = 0
    for row in answer.data:
        try:
            rows.append(observed_from_row(row if isinstance(row, dict) else {}))
        except ValueError:
            skipped += 1
    return GraphPage(
        rows=rows,
        skipped=skipped,
        skip_token=answer.skip_token or None,
        total=answer.total_records,
        quota_remaining=remaining,
        resets_after_s=resets,
    )
