"""Re-evaluation when exceptions expire: the stored latest results they covered are alerted through the usual path.

`reevaluate_expired` (run by the `exceptions_expiry` timer, starters/exceptions_api.py) finds the entries whose
expiry fell since its last run, and those active at its last run that no longer are (removed or changed by a PUT
or a new EXCEPTIONS_FILE: matched in their old form); then the images' latest results (cache table, `last_result`
rows) such an entry matched, and sends each through `send_notifications` under a re-evaluation id derived from the
image and the entries: the finding now counts, its fingerprint differs from the last alert, so it alerts (or joins
the digest) once; a later run, or a retry of this one, finds the same fingerprint and sends nothing. No rescan.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from datetime import UTC, datetime

from activities import wallclock
from activities.exceptions_store import ExceptionStore, inventory_workloads, workloads_of
from activities.notifications import NotifyRequest, send_notifications
from activities.notify_store import AlertStore
from activities.results_store import LATEST_RESULT_ROW, RESULT_PROPERTY, get_scan_record
from activities.storage_clients import clients_for
from core.events import DeploymentEvent
from core.exceptions_doc import ExceptionEntry, active_entries, expired_between
from core.naming import image_key
from core.report import ImageResult
from core.resource_ids import InvalidResourceId, parse_resource_id
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_IMAGES_PER_RUN = 5000
REEVALUATION_PREFIX = "expiry-"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reevaluation_id(key: str, entries: list[ExceptionEntry]) -> str:
    basis = "\n".join([key, *sorted(f"{e.id}@{e.expires.isoformat()}" for e in entries)])
    return REEVALUATION_PREFIX + hashlib.sha256(basis.encode()).hexdigest()[:32]


def reevaluate_expired(
    settings: Settings, now: datetime | None = None, *, tls_context: ssl.SSLContext | None = None
) -> dict[str, int]:
    """Alert what exceptions expired since the last run stopped covering; returns counts (images, alerts...)."""
    now = now or wallclock.now()
    store = ExceptionStore(settings)
    document = store.load()
    since = store.last_evaluated() or EPOCH
    active = active_entries(document, now)
    expired = list(expired_between(document, since, now))
    withdrawn = [e for e in store.last_active() if e not in active and e not in expired]
    totals = {"expired": len(expired), "withdrawn": len(withdrawn), "images": 0, "sent": 0}
    expired += withdrawn
    if expired:
        clients = clients_for(settings)
        table = clients.table(settings.cache_table)
        alerts = AlertStore(settings)
        rows = table.query_entities("RowKey eq @row", parameters={"row": LATEST_RESULT_ROW})
        for index, row in enumerate(rows):
            if index >= MAX_IMAGES_PER_RUN:
                log.warning("exceptions expiry: stopped after %d images", MAX_IMAGES_PER_RUN)
                break
            try:
                result = ImageResult.model_validate_json(str(row.get(RESULT_PROPERTY, "")))
            except ValueError:
                continue
            hits = [e for e in expired if e.image is None or _image_matches(e, result.image)]
            if not hits:
                continue
            record = get_scan_record(clients, settings, result.instance_id) if result.instance_id else None
            event = record.event if record is not None else None
            workloads = workloads_of(event) or inventory_workloads(settings, result.image)
            if not workloads_of(event) and workloads:  # a scan queue batch stored it: name a workload running it
                event = _event_for(workloads[0], now)
            hits = [e for e in hits if e.matches_target(result.image, workloads)]
            if not hits:
                continue
            key = image_key(result.image, result.digest)
            request = NotifyRequest(instance_id=reevaluation_id(key, hits), event=event, results=[result])
            counts = send_notifications(settings, request, alerts, tls_context=tls_context, exceptions=document)
            totals["images"] += 1
            totals["sent"] += sum(counts[c] for c in ("email", "webhook", "teams", "slack")) + counts["queued"]
            log.info("exceptions expiry: %s re-evaluated (%s expired): %s", result.image, [e.id for e in hits], counts)
    store.mark_evaluated(now, active)
    return totals


def _image_matches(entry: ExceptionEntry, image: str) -> bool:
    return entry.matches_target(image, []) if entry.scope is None else entry.matches_target(image, [entry.scope])


def _event_for(resource_id: str, now: datetime) -> dict[str, object] | None:
    """A deployment event for the alert's label (which workload), from a resource id the inventory holds."""
    try:
        parts = parse_resource_id(resource_id)
    except InvalidResourceId:
        return None
    return DeploymentEvent.from_parts(parts, "exceptions-expiry", now).model_dump(mode="json")
