"""Claims on "the findings last alerted" per image: exactly one of several concurrent scans alerts the same findings.

The claim is the `fingerprint` / `<image key>` row of the alerts table (activities/notify_store.py), written with
Azure Table optimistic concurrency BEFORE anything is sent: `create_entity` when the image has no row (a second
creator gets 409 EntityAlreadyExists, `ResourceExistsError`), else `update_entity` with the row's ETag and
`IfNotModified` (a second writer gets 412 UpdateConditionNotSatisfied, `ResourceModifiedError`); the loser reads the
row again and decides once more. See https://learn.microsoft.com/rest/api/storageservices/update-entity2 (If-Match)
and .../insert-entity (409 on an existing key).

Row states: `claimed` (a scan won and is about to alert; other scans with the same findings may still join their
workloads to its alert), `sending` (its alert is frozen: joins are refused), `sent` (alerted, or queued for a
digest; rows written before claims existed have no state and count as sent).

Failure semantics (chosen here):
- The winner's retry (same instance id) owns its claim: it sends again, and the per-channel ledger keeps every
  channel at most once.
- A send that failed on every channel releases the claim: the row goes back to the findings alerted before it
  (`prev_*`, or is deleted), so a later scan with these findings alerts them. A send that reached at least one
  channel counts as sent.
- A claim whose scan vanished (the host died between claim and send and the activity was never run again) is taken
  over by another scan after CLAIM_TTL, so it never blocks the findings for good.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from activities import wallclock

log = logging.getLogger(__name__)

FINGERPRINT_PARTITION = "fingerprint"
STATE_CLAIMED, STATE_SENDING, STATE_SENT = "claimed", "sending", "sent"
CLAIM_TTL = timedelta(hours=1)
"""How long an unfinished claim holds: far above an activity's run (functionTimeout, host.json, at most 10 min on
Consumption) plus its retries' backoff."""
CLAIM_ATTEMPTS = 8
MAX_JOINED = 50


@dataclass(frozen=True)
class Claim:
    """The outcome for one image: `won` (this scan alerts the findings) or not; `joined`: the loser's workloads were
    added to the winner's alert (still being built).
    """

    won: bool
    holder: str
    joined: bool = False


def _now() -> datetime:
    return wallclock.now()


def _state(row: dict[str, Any]) -> str:
    return str(row.get("state") or STATE_SENT)


def _stale(row: dict[str, Any], now: datetime) -> bool:
    claimed_at = row.get("claimed_at")
    return (
        _state(row) != STATE_SENT
        and isinstance(claimed_at, datetime)
        and now - claimed_at.astimezone(now.tzinfo) > CLAIM_TTL
    )


def _workloads(row: dict[str, Any]) -> list[str]:
    return list(json.loads(row.get("workloads") or "[]"))


def _update(table: TableClient, row: dict[str, Any], etag: str) -> None:
    table.update_entity(row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)


def claim(
    table: TableClient, key: str, fingerprint: str, *, instance_id: str, image: str, workloads: list[str]
) -> Claim:
    """Claim the image's findings for this scan before alerting them (see the module docstring)."""
    for _ in range(CLAIM_ATTEMPTS):
        now = _now()
        mine = {
            "PartitionKey": FINGERPRINT_PARTITION,
            "RowKey": key,
            "fingerprint": fingerprint,
            "instance_id": instance_id,
            "image": image,
            "state": STATE_CLAIMED,
            "claimed_at": now,
            "workloads": json.dumps(workloads[:MAX_JOINED]),
        }
        try:
            current = table.get_entity(FINGERPRINT_PARTITION, key)
        except ResourceNotFoundError:
            try:
                table.create_entity({**mine, "prev_fingerprint": "", "prev_instance_id": ""})
            except ResourceExistsError:
                continue  # another scan created it first: read it and decide again
            return Claim(True, instance_id)
        row, etag = dict(current), str(current.metadata["etag"])
        holder = str(row.get("instance_id", ""))
        if row.get("fingerprint") == fingerprint and holder == instance_id:
            return Claim(True, instance_id)  # a retry of the scan that claimed (or alerted) them
        if row.get("fingerprint") == fingerprint and not _stale(row, now):
            if _state(row) != STATE_CLAIMED:
                return Claim(False, holder)
            row["workloads"] = json.dumps(list(dict.fromkeys([*_workloads(row), *workloads]))[:MAX_JOINED])
            try:
                _update(table, row, etag)
            except ResourceModifiedError:
                continue
            return Claim(False, holder, joined=True)
        # Other findings (or a vanished claim): this scan's findings are news. Keep what was last really alerted.
        sent = _state(row) == STATE_SENT
        previous = {
            "prev_fingerprint": str(row.get("fingerprint", "")) if sent else str(row.get("prev_fingerprint", "")),
            "prev_instance_id": holder if sent else str(row.get("prev_instance_id", "")),
        }
        try:
            _update(table, {**mine, **previous}, etag)
        except ResourceModifiedError:
            continue
        if not sent:
            log.warning("alert claim of %s taken over from %s (%s)", image, holder, _state(row))
        return Claim(True, instance_id)
    raise RuntimeError(f"alerts claim row {key} kept changing")


def _own(table: TableClient, key: str, fingerprint: str, instance_id: str) -> tuple[dict[str, Any], str] | None:
    """The claim row and its ETag while it is still this scan's claim of these findings, else None."""
    try:
        current = table.get_entity(FINGERPRINT_PARTITION, key)
    except ResourceNotFoundError:
        return None
    row = dict(current)
    if row.get("fingerprint") != fingerprint or row.get("instance_id") != instance_id:
        return None
    return row, str(current.metadata["etag"])


def freeze(table: TableClient, key: str, fingerprint: str, instance_id: str) -> list[str]:
    """Close the claim to joins (`sending`) and return the workloads on it (this scan's and those that joined)."""
    for _ in range(CLAIM_ATTEMPTS):
        owned = _own(table, key, fingerprint, instance_id)
        if owned is None:
            return []
        row, etag = owned
        if _state(row) != STATE_CLAIMED:
            return _workloads(row)
        try:
            _update(table, {**row, "state": STATE_SENDING}, etag)
        except ResourceModifiedError:
            continue  # a loser joined meanwhile: read its workload too
        return _workloads(row)
    raise RuntimeError(f"alerts claim row {key} kept changing")


def finish(table: TableClient, key: str, fingerprint: str, instance_id: str) -> None:
    """The findings were alerted (or queued for a digest): the claim becomes the image's last alert."""
    owned = _own(table, key, fingerprint, instance_id)
    if owned is None:
        return  # superseded by a newer claim of other findings: it holds what was last alerted
    row, etag = owned
    if _state(row) == STATE_SENT:
        return
    try:
        _update(table, {**row, "state": STATE_SENT, "alerted_at": _now()}, etag)
    except ResourceModifiedError:
        log.info("alert claim of %s changed while finished; the newer claim holds", key)


def release(table: TableClient, key: str, fingerprint: str, instance_id: str) -> None:
    """Nothing was sent: back to the findings alerted before (none: the row goes), so a later scan alerts these."""
    owned = _own(table, key, fingerprint, instance_id)
    if owned is None or _state(owned[0]) == STATE_SENT:
        return
    row, etag = owned
    try:
        if row.get("prev_fingerprint"):
            restored = {
                "PartitionKey": FINGERPRINT_PARTITION,
                "RowKey": key,
                "fingerprint": row["prev_fingerprint"],
                "instance_id": row.get("prev_instance_id", ""),
                "image": row.get("image", ""),
                "state": STATE_SENT,
            }
            _update(table, restored, etag)
        else:
            table.delete_entity(FINGERPRINT_PARTITION, key, etag=etag, match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        log.info("alert claim of %s changed while released; the newer claim holds", key)
