"""Timer `alert_digest` (one run per ALERT_DIGEST_MINUTES window, read at indexing): sends the window's digest.

Each run sends what the `send_notifications` activity queued since the previous run, as one message per channel
(activities/notifications.py `flush_digests`), after finishing any digest a crashed run left half sent. With
ALERT_DIGEST_MINUTES 0 it runs daily and finds nothing to send, unless an earlier window setting left entries.
A failed channel raises; the digest stays `sending` and the next run delivers it to the channels that lack it.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from activities.notifications import AlertStore, flush_digests
from core.settings import get_settings
from core.trigger_bindings import load_digest_binding

logger = logging.getLogger(__name__)

ALERT_DIGEST_FUNCTION = "alert_digest"

bp = df.Blueprint()


@bp.function_name(ALERT_DIGEST_FUNCTION)  # type: ignore[untyped-decorator]
@bp.timer_trigger(arg_name="timer", schedule=load_digest_binding().schedule, run_on_startup=False)  # type: ignore[untyped-decorator]
def alert_digest(timer: func.TimerRequest) -> None:
    """Send the pending digest (see the module docstring)."""
    settings = get_settings()
    if timer.past_due:
        logger.info("alert digest: run is past due")
    sent = flush_digests(settings, AlertStore(settings))
    logger.info("alert digest: %d digest(s) sent", len(sent))
