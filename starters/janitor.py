"""Timer `janitor` (schedule: JANITOR_SCHEDULE, read at indexing): deletes scanner groups that outlived their scan.

A group is deleted when it is older than SCAN_TIMEOUT + JANITOR_GRACE_MINUTES and the orchestration named in its
tag has a terminal status (Completed, Failed, Terminated, Canceled) or definitely does not exist (the status API
answered 404 with an empty body, e.g. purged; the SDK reads a 500 with an empty body the same way, so such a blank
answer is confirmed by the status endpoint's own 404). A status the API could not give (a 5xx, a connection error,
a body that is not a status) keeps the group for a later run: a storage hiccup must never delete a live scan's group.
The orchestration deletes its own groups on every path; the janitor is the safety net for a crashed host, a lost
delete or a create that landed after the orchestration gave up. The same rule, on the owner and creation time in their
metadata, removes the groups' uploads containers (`{UPLOADS_CONTAINER}-<24 hex>`) that the store step did not delete
(e.g. a terminated or purged orchestration).

It is a client function that calls the ARM list/delete functions directly rather than through an orchestration:
the work is a bounded loop with no waiting, so durable history would only add cost. Another run retries anything
that failed, ten minutes later by default.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Protocol

import azure.durable_functions as df
import azure.functions as func

from activities.aci_scanner import delete_scanner_group, list_scanner_group_infos
from activities.orchestration_client import runtime_of
from activities.storage_clients import clients_for, delete_container, list_uploads_containers
from core.janitor import STATUS_UNREADABLE, JanitorDecision, ScannerGroupInfo, decide
from core.settings import Settings, get_settings
from core.trigger_bindings import load_janitor_binding

logger = logging.getLogger(__name__)

JANITOR_FUNCTION = "janitor"
STATUS_CHECK_TIMEOUT_S = 30

bp = df.Blueprint()


class StatusReader(Protocol):
    """The part of `DurableOrchestrationClient` the janitor uses."""

    async def get_status(self, instance_id: str) -> df.DurableOrchestrationStatus: ...


@dataclass
class ScannerGroupStore:
    """Lists and deletes scanner groups, or their uploads containers (blocking calls; run off the event loop)."""

    list_groups: Callable[[], Sequence[ScannerGroupInfo]]
    delete_group: Callable[[str], object]
    summary: str = "janitor: %d scanner group(s), %d deleted, %d failed"


@dataclass
class JanitorReport:
    """What one run did: every decision, and the groups whose delete failed."""

    decisions: list[JanitorDecision] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _is_empty_answer(status: object) -> bool:
    """True for what the SDK makes of the extension's "no such instance" (404, empty body): nothing but blanks.

    The SDK maps 200/202/400/404/500 alike to a status object, so a 500 with an error body (`{"Message": ...}`) also
    has no runtime status; only an answer with nothing in it is read as "not found".
    """
    if status is None:
        return True
    return all(value in (None, "", [], {}) for value in vars(status).values())


def _http_status(url: str) -> int | None:
    """The HTTP status of a GET of `url` (the status endpoint), None when there was no HTTP answer."""
    if not url.startswith(("http://", "https://")):
        return None
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the host's own endpoint: no proxy
        with opener.open(url, timeout=STATUS_CHECK_TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _status_url(client: StatusReader, instance_id: str) -> str | None:
    """The URL get_status asked (the extension's local `rpcBaseUrl`, always reachable from the worker), else the
    public `statusQueryGetUri`; None for a client with neither (a test double of get_status alone).
    """
    rpc = getattr(getattr(client, "_orchestration_bindings", None), "rpc_base_url", None)
    if isinstance(rpc, str) and rpc:
        return f"{rpc}instances/{urllib.parse.quote(instance_id, safe='')}"
    payload = getattr(client, "create_http_management_payload", None)
    return str(payload(instance_id).get("statusQueryGetUri", "")) if payload is not None else None


async def _confirmed_absent(client: StatusReader, instance_id: str) -> bool:
    """Whether the status endpoint itself answers 404 for the instance.

    The SDK turns a 404 and a 500 with an empty (or `{}`) body into the same blank status, so a blank answer is
    only "not found" once the endpoint's own status code says so.
    """
    url = _status_url(client, instance_id)
    if url is None:
        return True
    return await asyncio.to_thread(_http_status, url) == HTTPStatus.NOT_FOUND


async def _runtime_status(client: StatusReader, instance_id: str) -> str | None:
    """The instance's runtime status, None when it definitely does not exist, STATUS_UNREADABLE otherwise."""
    try:
        status = await client.get_status(instance_id)
    except Exception as error:  # the SDK raises on other codes; aiohttp on connection errors
        why = type(error).__name__
    else:
        runtime = runtime_of(status)
        if runtime is not None:
            return runtime
        if _is_empty_answer(status):
            if await _confirmed_absent(client, instance_id):
                return None
            why = "a blank answer that is not a 404"
        else:
            why = "an answer without a runtime status"
    logger.warning("janitor: status of %s unreadable (%s), its groups are kept", instance_id, why)
    return STATUS_UNREADABLE


async def sweep(
    client: StatusReader,
    store: ScannerGroupStore,
    settings: Settings,
    now: datetime,
    *,
    uploads: ScannerGroupStore | None = None,
) -> JanitorReport:
    """One janitor run: list, decide, delete the scanner groups, then the same for `uploads` (their containers).

    A failed delete is logged and left for the next run, as is a group whose orchestration's status could not be
    read. Each orchestration's status is asked once.
    """
    report = JanitorReport()
    statuses: dict[str, str | None] = {}
    for each in (store, uploads):
        if each is not None:
            await _sweep_one(each, client=client, settings=settings, now=now, statuses=statuses, report=report)
    return report


async def _sweep_one(
    store: ScannerGroupStore,
    *,
    client: StatusReader,
    settings: Settings,
    now: datetime,
    statuses: dict[str, str | None],
    report: JanitorReport,
) -> None:
    groups = await asyncio.to_thread(store.list_groups)
    for instance_id in sorted({g.instance_id for g in groups if g.instance_id} - set(statuses)):
        statuses[instance_id] = await _runtime_status(client, instance_id)
    decisions = decide(
        groups, statuses, now=now, scan_timeout_s=settings.scan_timeout, grace_minutes=settings.janitor_grace_minutes
    )
    report.decisions += decisions
    deleted = failed = 0
    for decision in decisions:
        if not decision.delete:
            continue
        try:
            await asyncio.to_thread(store.delete_group, decision.name)
        except Exception as error:  # one bad group must not stop the sweep
            report.failed.append(decision.name)
            failed += 1
            logger.warning("janitor: could not delete %s: %s", decision.name, type(error).__name__)
            continue
        report.deleted.append(decision.name)
        deleted += 1
        logger.info("janitor: deleted %s (%s)", decision.name, decision.reason)
    logger.info(store.summary, len(groups), deleted, failed)


def arm_group_store(settings: Settings) -> ScannerGroupStore:
    """The production store: the ARM functions of activities/aci_scanner.py."""
    return ScannerGroupStore(
        list_groups=lambda: list_scanner_group_infos(settings),
        delete_group=lambda name: delete_scanner_group(settings, name),
    )


def uploads_container_store(settings: Settings) -> ScannerGroupStore:
    """The scanner groups' uploads containers (only `{prefix}-<24 hex>` with the app's metadata are listed)."""
    return ScannerGroupStore(
        list_groups=lambda: list_uploads_containers(settings),
        delete_group=lambda name: delete_container(clients_for(settings), name),
        summary="janitor: %d uploads container(s), %d deleted, %d failed",
    )


@bp.function_name(JANITOR_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=load_janitor_binding().janitor_schedule, run_on_startup=False)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def janitor(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Delete forgotten scanner groups, then forgotten uploads containers (see the module docstring)."""
    settings = get_settings()
    if timer.past_due:
        logger.info("janitor: run is past due")
    await sweep(
        client, arm_group_store(settings), settings, datetime.now(UTC), uploads=uploads_container_store(settings)
    )
