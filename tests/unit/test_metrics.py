"""Metrics: core.metrics (names, closed attribute sets) and activities.telemetry recording into an in-memory reader."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from activities import telemetry
from core import metrics as m
from core.report import ImageResult, VulnerabilityCounts
from core.results import StoreRequest
from core.scan_payloads import store_input
from core.scan_queue import (
    Budget,
    EnqueueRequest,
    FinishRequest,
    QueuedImage,
    QueueState,
    ReleaseRequest,
    enqueue,
    finish_image,
    release,
)
from devhost.demo_metrics import DemoMetrics

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# Attributes that would make a metric's cardinality grow with the estate: never allowed.
FORBIDDEN_ATTRIBUTES = {"image", "digest", "cve", "qid", "instance_id", "resource_id", "workload", "group", "key"}


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    found = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[found])
    telemetry.use_meter_provider(provider)
    yield found
    telemetry.use_meter_provider(None)
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """{metric: {sorted attributes: value, or (count, sum) for a histogram}}."""
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    value = (point.count, point.sum) if isinstance(point, HistogramDataPoint) else point.value  # type: ignore[union-attr]
                    found.setdefault(metric.name, {})[key] = value
    return found


def result(status: str = "completed", **counts: int) -> ImageResult:
    return ImageResult.model_validate(
        {"image": "docker.io/library/nginx:1.27", "status": status, "vulnerabilities": VulnerabilityCounts(**counts)}
    )


def test_every_metric_is_named_once_with_a_unit_and_small_closed_attributes() -> None:
    names = [spec.name for spec in m.METRICS]
    assert len(names) == len(set(names))
    for spec in m.METRICS:
        assert spec.name.startswith("qscan.") and spec.unit and spec.description and spec.where
        assert FORBIDDEN_ATTRIBUTES.isdisjoint(spec.attributes), spec.name
        assert all(0 < len(values) <= 10 for values in spec.attributes.values()), spec.name


def test_attributes_outside_their_closed_set_become_other_and_unknown_keys_are_refused() -> None:
    assert m.attributes(m.SCANS, outcome="completed", kind="rescan") == {"outcome": "completed", "kind": "rescan"}
    assert m.attributes(m.SCANS, outcome="docker.io/x:1", kind="CVE-2025-1") == {"outcome": "other", "kind": "other"}
    with pytest.raises(ValueError, match=r"qscan\.scans"):
        m.attributes(m.SCANS, outcome="completed", kind="image", image="docker.io/x:1")


def test_scan_kind_is_the_target_kind_or_rescan_and_none_for_batch_records() -> None:
    assert m.scan_kind({"kind": "deployment", "event": {}}, rescan=False) == "deployment"
    assert m.scan_kind({"kind": "image", "image": "x"}, rescan=True) == "rescan"
    assert m.scan_kind({"batch": "scan-1", "images": []}, rescan=False) is None
    assert m.scan_kind(None, rescan=False) is None
    assert m.seconds_between(T0, T0 - timedelta(seconds=1)) is None


def test_a_stored_scan_counts_by_outcome_and_kind_and_a_batch_record_counts_its_group(
    reader: InMemoryMetricReader,
) -> None:
    record = store_input(
        "scan-" + "a" * 32,
        {"kind": "image", "image": "docker.io/library/nginx:1.27"},
        [result()],
        status="completed",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=90),
        rescan=True,
    )
    telemetry.scan_stored(StoreRequest.model_validate(record))
    batch = store_input(
        "scan-" + "b" * 32,
        {"batch": "scan-" + "b" * 32, "images": []},
        [result()],
        status="completed",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=200),
        scanner_groups=["qscan-" + "b" * 20],
    )
    telemetry.scan_stored(StoreRequest.model_validate(batch))
    found = points(reader)
    assert found["qscan.scans"] == {(("kind", "rescan"), ("outcome", "completed")): 1}
    assert found["qscan.scan.duration"] == {(("kind", "rescan"), ("outcome", "completed")): (1, 90.0)}
    assert found["qscan.scanner.group_seconds"] == {(): 200.0}


def test_store_input_names_rescan_only_when_true() -> None:
    common: dict[str, Any] = {"status": "completed", "started_at": T0, "finished_at": T0}
    target = {"kind": "image", "image": "docker.io/library/nginx:1.27"}
    assert "rescan" not in store_input("scan-" + "a" * 32, target, [], **common)
    assert store_input("scan-" + "a" * 32, target, [], rescan=True, **common)["rescan"] is True


def test_collected_results_count_images_by_status_and_findings_by_severity(reader: InMemoryMetricReader) -> None:
    telemetry.collected([result(HIGH=2, LOW=3), result("denied", CRITICAL=1), result("failed")])
    found = points(reader)
    assert found["qscan.images"] == {
        (("status", "completed"),): 1,
        (("status", "denied"),): 1,
        (("status", "failed"),): 1,
    }
    assert found["qscan.findings"] == {
        (("severity", "CRITICAL"),): 1,
        (("severity", "HIGH"),): 2,
        (("severity", "LOW"),): 3,
    }


def test_alerts_suppressions_groups_quota_cache_and_sweeps(reader: InMemoryMetricReader) -> None:
    telemetry.alert("email", digest=False, sent=True)
    telemetry.alert("teams", digest=True, sent=True)
    telemetry.alert("slack", digest=True, sent=False)
    telemetry.suppressed("same findings")
    telemetry.suppressed("exception", 3)
    telemetry.group_created(1.0)
    telemetry.group_created(1.0)
    telemetry.group_deleted(1.0)
    telemetry.create_refused(quota=True)
    telemetry.create_refused(quota=False)
    telemetry.cache_looked_up(2, 5)
    telemetry.sweep_recorded({"trigger": "backfill", "scans_started": 4})
    found = points(reader)
    assert found["qscan.alerts"] == {
        (("channel", "email"), ("mode", "scan"), ("outcome", "sent")): 1,
        (("channel", "teams"), ("mode", "digest"), ("outcome", "sent")): 1,
        (("channel", "slack"), ("mode", "digest"), ("outcome", "failed")): 1,
    }
    assert found["qscan.alerts.suppressed"] == {(("reason", "same_findings"),): 1, (("reason", "exception"),): 3}
    assert found["qscan.scanner.groups"] == {(): 2}
    assert found["qscan.scanner.cores"] == {(): 1.0}
    assert found["qscan.quota.waits"] == {(("reason", "aci_quota"),): 1}
    assert found["qscan.cache.lookups"] == {(("result", "hit"),): 2, (("result", "miss"),): 5}
    assert found["qscan.sweeps"] == {(("trigger", "backfill"),): 1}
    assert found["qscan.sweep.scans"] == {(("trigger", "backfill"),): 4}


def test_the_queue_reports_each_images_wait_and_the_depth_left_in_its_grants(reader: InMemoryMetricReader) -> None:
    budget = Budget(max_groups=1, max_images_per_group=2, scan_timeout_s=600)
    images = tuple(QueuedImage(key=f"k{n}", image=f"docker.io/library/i{n}:1") for n in range(3))
    state, first = enqueue(QueueState(), EnqueueRequest(instance_id="a", now=T0, images=images, budget=budget))
    assert [(g.waited_s, g.pending) for g in first.grants] == [((0.0, 0.0), 1)]
    later = T0 + timedelta(seconds=75)
    runner = first.grants[0].runner
    for key in ("k0", "k1"):
        state, _ = finish_image(state, FinishRequest(runner=runner, key=key, now=later))
    state, second = release(state, ReleaseRequest(runner=runner, now=later, budget=budget))
    assert [(g.waited_s, g.pending) for g in second.grants] == [((75.0,), 0)]
    telemetry.batches_granted(g.model_dump(mode="json") for g in (*first.grants, *second.grants))
    found = points(reader)
    assert found["qscan.queue.wait"] == {(): (3, 75.0)}
    assert found["qscan.queue.depth"] == {(): 0}
    assert found["qscan.quota.waits"] == {(("reason", "capacity"),): 1}
    assert [g.waited_for for g in (*first.grants, *second.grants)] == [None, "capacity"]


def test_queue_state_and_grants_of_older_shapes_still_load() -> None:
    state = QueueState.model_validate({"pending": [{"item": {"key": "k", "image": "i"}, "requesters": ["a"]}]})
    assert state.pending[0].since is None


def test_recording_never_fails_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def add(self, *_args: object) -> None:
            raise RuntimeError("exporter down")

    monkeypatch.setattr(telemetry, "_instrument", lambda _spec: Broken())
    telemetry.group_created(1.0)  # logged, not raised


def test_configure_needs_the_connection_string_and_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    assert telemetry.configure({}) is False
    assert telemetry.configure({telemetry.CONNECTION_STRING_SETTING: "InstrumentationKey=x"}) is False  # done once


def test_demo_snapshot_lists_every_metric_without_timestamps() -> None:
    metrics = DemoMetrics()
    try:
        telemetry.group_created(1.0)
        snapshot = metrics.snapshot()
    finally:
        metrics.close()
    assert set(snapshot["metrics"]) == {spec.name for spec in m.METRICS}
    assert snapshot["metrics"]["qscan.scanner.groups"]["points"] == [{"attributes": {}, "value": 1}]
    assert "time" not in str(snapshot)


def test_configure_sends_metrics_only_and_leaves_an_operators_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry, "configure_azure_monitor", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "")  # recorded, so the value configure sets is undone afterwards
    monkeypatch.delenv("OTEL_LOGS_EXPORTER")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert telemetry.configure({telemetry.CONNECTION_STRING_SETTING: "InstrumentationKey=x"}) is True
    assert telemetry.configure({telemetry.CONNECTION_STRING_SETTING: "InstrumentationKey=x"}) is False
    assert len(calls) == 1
    assert calls[0]["enable_live_metrics"] is False and calls[0]["enable_performance_counters"] is False
    assert all(not option["enabled"] for option in calls[0]["instrumentation_options"].values())
    assert os.environ["OTEL_LOGS_EXPORTER"] == "none"
    assert os.environ["OTEL_TRACES_EXPORTER"] == "otlp"
