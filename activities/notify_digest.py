"""Alert digests (ALERT_DIGEST_MINUTES): one message per window and channel over the images queued in the alerts table.

`flush_digests` runs once per window (starters/alert_digest.py): it finishes any digest a crashed run left, then
claims what is waiting (its id from the claimed rows, so a rerun opens the same digest), freezes it and sends it on
every configured channel once (activities/notify_channels.py).
"""

from __future__ import annotations

import hashlib
import logging
import ssl

from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableEntity

from activities.notify_channels import CHANNELS, send_all
from activities.notify_store import (
    HEADER_PREFIX,
    PENDING_PREFIX,
    STATE_OPEN,
    STATE_SENDING,
    STATE_SENT,
    AlertStore,
    PendingEntry,
)
from core.alerts import Alert
from core.report import Severity
from core.settings import Settings

log = logging.getLogger(__name__)

DIGEST_ID_PREFIX = "digest-"


def _digest_alert(settings: Settings, digest_id: str, entries: list[PendingEntry]) -> Alert:
    entries = sorted(entries, key=lambda e: (e.result.image, e.row_key))
    return Alert(
        digest_id,
        None,
        Severity(settings.notify_severity_threshold),
        [e.result for e in entries],
        [],
        workloads={e.result.image: tuple(e.workloads) for e in entries},
        findings={e.result.image: e.findings for e in entries if e.findings},
        scans=tuple(sorted({scan for e in entries for scan in e.scans})),
        diffs={e.result.image: e.diff for e in entries if e.diff is not None},
        exceptions={e.result.image: e.exceptions for e in entries if e.exceptions},
    )


def _claim_new(store: AlertStore, rows: list[TableEntity]) -> str | None:
    """Open a digest over the unclaimed entries (its id from their keys: a rerun opens the same one)."""
    unclaimed = sorted(
        f"{r['RowKey']} {r.get('scans', '')}"
        for r in rows
        if str(r["RowKey"]).startswith(PENDING_PREFIX) and not r.get("digest")
    )
    if not unclaimed:
        return None
    # The scans are part of the id: the same image and failure queued again in a later window is a new digest.
    digest_id = DIGEST_ID_PREFIX + hashlib.sha256("\n".join(unclaimed).encode()).hexdigest()[:24]
    store.set_header(digest_id, STATE_OPEN)
    return digest_id


def _send_digest(
    settings: Settings, store: AlertStore, digest_id: str, state: str, tls_context: ssl.SSLContext | None
) -> dict[str, int]:
    if state == STATE_OPEN:  # claim what is waiting, then no more: what a channel got must not grow afterwards
        for row in store.queue_rows():
            if str(row["RowKey"]).startswith(PENDING_PREFIX) and not row.get("digest"):
                try:
                    store.claim(row, digest_id)
                except ResourceModifiedError:
                    log.info("alert digest: %s changed while claimed; it waits for the next window", row["RowKey"])
        store.set_header(digest_id, STATE_SENDING)
    claimed = [r for r in store.queue_rows() if r.get("digest") == digest_id]
    entries = [PendingEntry.from_row(r) for r in claimed]
    counts = dict.fromkeys(CHANNELS, 0)
    if entries:
        counts = send_all(
            settings,
            _digest_alert(settings, digest_id, entries),
            store.digest_sent,
            store.mark_digest_sent,
            tls_context,
        )
    store.set_header(digest_id, STATE_SENT)
    for entry in entries:
        store.delete_row(entry.row_key)
    log.info("alert digest %s: %d image(s), sent %s", digest_id, len(entries), counts)
    return counts


def flush_digests(settings: Settings, store: AlertStore, *, tls_context: ssl.SSLContext | None = None) -> list[str]:
    """Send the digest of what is waiting (finishing first any digest a crashed run left); returns the digest ids.

    One run is one window: the timer runs once per ALERT_DIGEST_MINUTES. A channel that fails raises after the
    others were tried; the digest stays `sending` and the next run sends it to the channels that still lack it.
    """
    done: list[str] = []
    rows = store.queue_rows()
    unfinished = sorted(
        (str(r["RowKey"])[len(HEADER_PREFIX) :], str(r.get("state")))
        for r in rows
        if str(r["RowKey"]).startswith(HEADER_PREFIX) and r.get("state") in (STATE_OPEN, STATE_SENDING)
    )
    for digest_id, state in unfinished:
        _send_digest(settings, store, digest_id, state, tls_context)
        done.append(digest_id)
    new = _claim_new(store, store.queue_rows() if unfinished else rows)
    if new:
        _send_digest(settings, store, new, STATE_OPEN, tls_context)
        done.append(new)
    return done
