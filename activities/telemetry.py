"""The app's OpenTelemetry metrics (core/metrics.py names them): set-up once per worker process, and recording.

In Azure the Functions host sets APPLICATIONINSIGHTS_CONNECTION_STRING (and APPLICATIONINSIGHTS_AUTHENTICATION_STRING,
Entra ID ingestion, which the exporter reads itself): the first measurement of the process calls
`configure_azure_monitor` once, metrics only: no traces, logs, live metrics, performance counters or
instrumentations (the host already sends the logs, requests and dependencies; the distro's would be duplicates).
Without it the instruments come from OpenTelemetry's global provider, a no-op unless something installed one.
devhost (dev/test only) installs its own provider with an in-memory reader through `use_meter_provider`; the app
never calls that.

Recording never fails the caller: an OpenTelemetry error is logged and dropped. The attributes come from closed
sets only (core.metrics.attributes): no image, CVE, instance or resource ever becomes a label.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from azure.monitor.opentelemetry import configure_azure_monitor
from opentelemetry import metrics as otel_metrics

from core import metrics as m
from core.report import ImageResult
from core.results import StoreRequest

log = logging.getLogger(__name__)

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
METRICS_ONLY = {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
"""The distro sends no traces and no logs (the Functions host already sends them); an operator's own value wins."""
INSTRUMENTED_LIBRARIES = ("azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3")
"""The distro's automatic instrumentations, all off: they would only make spans, and tracing is off."""

_lock = threading.RLock()
_provider: otel_metrics.MeterProvider | None = None
_configured = False
_instruments: dict[str, Any] = {}
_queue_depth: int | None = None


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Send metrics to Application Insights when the connection string is set; at most once per process.

    True when this call configured the exporter. A failure is logged (the app runs on without metrics).
    """
    global _configured
    with _lock:
        if _configured:
            return False
        _configured = True
    if not (environ if environ is not None else os.environ).get(CONNECTION_STRING_SETTING):
        return False
    try:
        for name, value in METRICS_ONLY.items():  # the distro reads these (its disable_* arguments are ignored)
            os.environ.setdefault(name, value)
        configure_azure_monitor(
            enable_live_metrics=False,
            enable_performance_counters=False,
            instrumentation_options={library: {"enabled": False} for library in INSTRUMENTED_LIBRARIES},
        )
    except Exception as error:  # metrics are never worth a failed scan
        log.warning("metrics: Azure Monitor not configured: %s", type(error).__name__)
        return False
    return True


def use_meter_provider(provider: otel_metrics.MeterProvider | None) -> None:
    """Record through `provider` from now on (devhost's in-memory reader); None: back to the global provider."""
    global _provider, _queue_depth
    with _lock:
        _provider = provider
        _instruments.clear()
        _queue_depth = None


def _observe_queue_depth(_options: otel_metrics.CallbackOptions) -> Iterator[otel_metrics.Observation]:
    depth = _queue_depth
    if depth is not None:
        yield otel_metrics.Observation(depth, {})


def _instrument(spec: m.MetricSpec) -> Any:
    with _lock:
        found = _instruments.get(spec.name)
        if found is not None:
            return found
        if _provider is None:
            configure()
        meter = (_provider or otel_metrics.get_meter_provider()).get_meter(m.METER_NAME)
        made: Any
        if spec.kind == "counter":
            made = meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
        elif spec.kind == "histogram":
            made = meter.create_histogram(spec.name, unit=spec.unit, description=spec.description)
        elif spec.kind == "updown":
            made = meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)
        else:
            made = meter.create_observable_gauge(
                spec.name, callbacks=[_observe_queue_depth], unit=spec.unit, description=spec.description
            )
        _instruments[spec.name] = made
        return made


def add(spec: m.MetricSpec, value: float, **attributes: object) -> None:
    """Add to a counter or up-down counter (attributes validated against the spec's closed sets)."""
    labels = m.attributes(spec, **attributes)
    if spec.kind == "counter" and value <= 0:
        return
    try:
        _instrument(spec).add(value, labels)
    except Exception as error:
        log.warning("metrics: %s not recorded: %s", spec.name, type(error).__name__)


def record(spec: m.MetricSpec, value: float, **attributes: object) -> None:
    """Record one value of a histogram."""
    labels = m.attributes(spec, **attributes)
    try:
        _instrument(spec).record(value, labels)
    except Exception as error:
        log.warning("metrics: %s not recorded: %s", spec.name, type(error).__name__)


# --- what the activities record -----------------------------------------------------------------------------


def scan_stored(request: StoreRequest) -> None:
    """A stored record: a deployment's or image's scan (count, duration, rescans); a group's lifetime."""
    kind = m.scan_kind(request.event, rescan=request.rescan)
    span = m.seconds_between(request.started_at, request.finished_at)
    if kind is not None:
        add(m.SCANS, 1, outcome=request.status, kind=kind)
        if span is not None:
            record(m.SCAN_DURATION, span, outcome=request.status, kind=kind)
    if request.scanner_groups and span is not None:
        add(m.GROUP_SECONDS, span * len(request.scanner_groups))


def collected(results: Iterable[ImageResult]) -> None:
    """Results collected from a scanner group: images by status, findings by severity."""
    for result in results:
        add(m.IMAGES, 1, status=result.status)
        for severity in sorted(m.SEVERITIES):
            add(m.FINDINGS, result.vulnerabilities.of(severity), severity=severity)


def cache_looked_up(hits: int, misses: int) -> None:
    add(m.CACHE_LOOKUPS, hits, result="hit")
    add(m.CACHE_LOOKUPS, misses, result="miss")


def batches_granted(grants: Iterable[Mapping[str, Any]]) -> None:
    """The scan queue's grants being started: each image's wait in the queue, batches that waited for capacity or
    the create rate, the queue's depth after them.
    """
    global _queue_depth
    for grant in grants:
        for waited in grant.get("waited_s") or ():
            if isinstance(waited, int | float) and waited >= 0:
                record(m.QUEUE_WAIT, float(waited))
        if grant.get("waited_for"):
            add(m.QUOTA_WAITS, 1, reason=grant["waited_for"])
        pending = grant.get("pending")
        if isinstance(pending, int) and not isinstance(pending, bool) and pending >= 0:
            _queue_depth = pending
    if _queue_depth is not None:
        _instrument(m.QUEUE_DEPTH)  # the gauge exists (and reports) once the queue has been seen


def group_created(cores: float) -> None:
    add(m.GROUPS_CREATED, 1)
    add(m.CORES_IN_USE, cores)


def group_deleted(cores: float) -> None:
    add(m.CORES_IN_USE, -cores)


def create_refused(*, quota: bool) -> None:
    """A create ARM refused; counted when for quota (the scan waits and creates again)."""
    if quota:
        add(m.QUOTA_WAITS, 1, reason="aci_quota")


def alert(channel: str, *, digest: bool, sent: bool) -> None:
    """One message on one channel: a scan's alert or a digest (`Alert.is_digest`), sent or failed."""
    add(m.ALERTS, 1, channel=channel, mode="digest" if digest else "scan", outcome="sent" if sent else "failed")


def suppressed(reason: str, count: int = 1) -> None:
    """Left out of alerts: `same_findings`, `window` (images) or `exception` (findings)."""
    add(m.ALERTS_SUPPRESSED, count, reason=reason.replace(" ", "_"))


def sweep_recorded(summary: Mapping[str, Any]) -> None:
    """A sweep finished: one sweep, and the scans it started."""
    trigger = summary.get("trigger")
    add(m.SWEEPS, 1, trigger=trigger)
    started = summary.get("scans_started")
    if isinstance(started, int) and not isinstance(started, bool):
        add(m.SWEEP_SCANS, started, trigger=trigger)
