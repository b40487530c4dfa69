"""The demo's `OUT/metrics.json`: the app's OpenTelemetry metrics through the SDK's in-memory reader (dev/test only).

`DemoMetrics` installs a MeterProvider with an `InMemoryMetricReader` in the app's telemetry module
(activities.telemetry.use_meter_provider; no Azure Monitor locally) before the run, and `snapshot` reads it at the
end: every metric of core.metrics.METRICS, each data point with its attributes and cumulative value (histograms:
count, sum, min, max and bucket counts). The OpenTelemetry timestamps are left out and points are sorted, so the
same scenario gives the same file: durations and waits are measured on the orchestrations' (virtual) clock.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum

from activities import telemetry
from core.metrics import METER_NAME, METRICS

METRICS_FILE = "metrics.json"
DIGITS = 3


class DemoMetrics:
    """The in-memory reader the app records into during one demo run."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        telemetry.use_meter_provider(self.provider)

    def snapshot(self) -> dict[str, Any]:
        """metrics.json: `{"meter", "temporality", "metrics": {name: {"kind", "unit", "points": [...]}}}`."""
        found: dict[str, list[dict[str, Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                if scope.scope.name != METER_NAME:
                    continue
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(_points(metric.data))
        metrics: dict[str, dict[str, Any]] = {
            spec.name: {
                "kind": spec.kind,
                "unit": spec.unit,
                "points": sorted(found.get(spec.name, []), key=_attributes_text),
            }
            for spec in sorted(METRICS, key=lambda s: s.name)
        }
        return {"meter": METER_NAME, "temporality": "cumulative", "metrics": metrics}

    def close(self) -> None:
        telemetry.use_meter_provider(None)
        self.provider.shutdown()


def _attributes_text(point: dict[str, Any]) -> str:
    return json.dumps(point["attributes"], sort_keys=True)


def _number(value: float | int | None) -> float | int | None:
    if isinstance(value, float):
        rounded = round(value, DIGITS)
        return int(rounded) if rounded.is_integer() else rounded
    return value


def _points(data: Any) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for point in data.data_points:
        attributes = dict(sorted((point.attributes or {}).items()))
        if isinstance(data, Histogram):
            points.append(
                {
                    "attributes": attributes,
                    "count": point.count,
                    "sum": _number(point.sum),
                    "min": _number(point.min) if point.count else None,
                    "max": _number(point.max) if point.count else None,
                    "bounds": [_number(b) for b in point.explicit_bounds],
                    "bucket_counts": list(point.bucket_counts),
                }
            )
        elif isinstance(data, Sum | Gauge):
            points.append({"attributes": attributes, "value": _number(point.value)})
    return points
