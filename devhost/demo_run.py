"""Driving a demo run: seed the cache, deliver the scenario's messages in order, let the app run to idle."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from activities.results_store import store_results
from activities.storage_clients import clients_for
from core.events import InvalidMessage, parse_message
from core.images import parse_image_ref
from core.naming import image_key
from core.report import ImageResult
from core.results import StoreRequest
from devhost.armsim.scanner_run import EXIT_CODES, ImageOutcome, report_document
from devhost.armsim.scenario import ScanBehaviour
from devhost.demo_inventory import retire_deleted
from devhost.demo_scenario import SEVERITY_NAMES, CacheSeed, Delivery
from devhost.demo_stack import DemoStack
from devhost.engine import DurableEngine
from devhost.orchestration import TERMINAL_STATUSES
from starters.alert_digest import ALERT_DIGEST_FUNCTION
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION

SEED_INSTANCE_ID = "demo-cache-seed"
INVOCATION_HEADER = "x-devhost-invocation-id"
INSTANCES_PATH = "/runtime/webhooks/durabletask/instances"
ENTITY_ID_PREFIX = "@"
HTTP_TIMEOUT_S = 30.0
INVOCATION_POLL_S = 0.01
RUNNING = "running"
BARRIER_STEP = timedelta(seconds=1)
SEED_RESULTS = {"completed": "ok", "denied": "deny"}


class HarnessError(RuntimeError):
    """The demo itself could not do its job (as opposed to scans that failed, which are part of a scenario)."""


@dataclass
class Deadline:
    """The wall-clock safety limit of the whole run."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def exceeded(self, what: str) -> HarnessError:
        """The error to raise when the limit is reached while doing `what`."""
        return HarnessError(f"wall-clock safety limit of {self.seconds:.0f} s reached while {what}")

    def remaining(self, what: str) -> float:
        """Seconds left; raises `exceeded(what)` when none are."""
        left = self.seconds - (time.monotonic() - self.started)
        if left <= 0:
            raise self.exceeded(what)
        return left


@dataclass
class DeliveryLog:
    """What happened to each delivered message (the starter invocation's outcome)."""

    failed: list[str] = field(default_factory=list)
    delivered: int = 0


def seed_cache(stack: DemoStack, seeds: list[CacheSeed]) -> None:
    """Store each seed through the app's own store (report blob + cache row), scanned `age_hours` ago."""
    if not seeds:
        return
    clients = clients_for(stack.settings)
    reports = clients.container(stack.settings.results_container)
    now = stack.clock.now()
    results: list[ImageResult] = []
    for seed in seeds:
        canonical = parse_image_ref(seed.image).canonical
        scanned_at = now - timedelta(hours=seed.age_hours)
        result = SEED_RESULTS[seed.status]
        behaviour = ScanBehaviour.model_validate({"result": result, "vulnerabilities": seed.vulnerabilities})
        outcome = ImageOutcome(0, canonical, result, EXIT_CODES[result], scanned_at, scanned_at, behaviour, None)
        blob = reports.upload_blob(
            f"{image_key(canonical)}/{SEED_INSTANCE_ID}/report.sarif.json",  # the SARIF the scanner would write
            json.dumps(report_document(outcome)).encode(),
            overwrite=True,
        )
        counts = {severity: seed.vulnerabilities.get(severity, 0) for severity in SEVERITY_NAMES}
        results.append(
            ImageResult.model_validate(
                {
                    "image": canonical,
                    "status": seed.status,
                    "vulnerabilities": counts,
                    "report": str(blob.url),
                    "scanned_at": scanned_at,
                    "instance_id": SEED_INSTANCE_ID,
                    "exit_code": EXIT_CODES[result],
                }
            )
        )
    request = StoreRequest(instance_id=SEED_INSTANCE_ID, status="completed", finished_at=now, results=results)
    store_results(clients, stack.settings, request)


class OperationTracker:
    """Remembers the deployment operations of the messages so far, to recognise a redeploy."""

    def __init__(self, scanner_resource_group: str) -> None:
        self.scanner_resource_group = scanner_resource_group
        self._operations: dict[str, set[str]] = {}  # resource id -> correlation ids

    def redeploys(self, body: str) -> list[str]:
        """Names of resources this message deploys again (a new correlation id on a resource of an earlier message).

        Read with the app's own parser; the message's operations are remembered for the next messages.
        """
        try:
            targets = parse_message(body, scanner_resource_group=self.scanner_resource_group).targets
        except InvalidMessage:
            return []
        again: list[str] = []
        for target in targets:
            seen = self._operations.setdefault(target.resource_id.lower(), set())
            if seen and target.correlation_id.lower() not in seen:
                again.append(target.name)
            seen.add(target.correlation_id.lower())
        return again


class Driver:
    """Talks to devhost over HTTP like the Functions host would, and runs the engine when the demo says so."""

    def __init__(self, stack: DemoStack, deadline: Deadline, log: Callable[[str], None]) -> None:
        self.stack = stack
        self.deadline = deadline
        self.log = log
        self.base_url = stack.server.base_url
        self.session = requests.Session()
        self.deliveries = DeliveryLog()
        self._started = stack.clock.now()
        self._last_delivery = self._started
        self.arrivals: dict[int, float] = {}  # message index -> virtual seconds since the start, when delivered
        self._operations = OperationTracker(stack.settings.scanner_resource_group)
        self._digest_window = self._window_of(self._started)
        self.digest_runs = 0
        self.before_delivery: Callable[[], None] | None = None  # e.g. the exceptions expiry timer (demo_exceptions)

    def _window_of(self, moment: datetime) -> int:
        """The ALERT_DIGEST_MINUTES window `moment` falls in (0 when digests are off)."""
        minutes = self.stack.settings.alert_digest_minutes
        return int(moment.timestamp() // (minutes * 60)) if minutes else 0

    def flush_digests(self, what: str) -> None:
        """Run the `alert_digest` timer once, as the host does at a window's end (docs/demo.md, "Alert digests")."""
        if not self.stack.settings.alert_digest_minutes:
            return
        self.run_timer(ALERT_DIGEST_FUNCTION, what, "digest timer")
        self.digest_runs += 1

    def run_timer(self, function: str, what: str, label: str | None = None) -> None:
        """Run a timer function once through devhost's admin API and wait for it; a failure is noted, not raised."""
        label = label or function
        response = self.session.post(
            f"{self.base_url}/admin/functions/{function}", json={"input": ""}, timeout=HTTP_TIMEOUT_S
        )
        if response.status_code != 202:
            raise HarnessError(f"devhost refused the {label} ({what}): HTTP {response.status_code}")
        record = self._wait_invocation(response.headers[INVOCATION_HEADER], f"the {label} ({what})")
        if record.get("status") != "succeeded":
            self.deliveries.failed.append(f"{label} ({what}): {record.get('error') or record.get('status')}")

    def _digest_if_window_passed(self) -> None:
        """Fire the digest timer when the virtual clock crossed a window boundary since it last ran."""
        window = self._window_of(self.stack.clock.now())
        if window > self._digest_window:
            self._digest_window = window
            self.flush_digests(f"window ending before +{self.virtual_elapsed()}")

    def close(self) -> None:
        self.session.close()

    def settle(self, what: str) -> None:
        """Run every orchestration (virtual time jumps over its timers) until nothing can run any more."""
        try:
            self.stack.server.wait_idle(timeout=self.deadline.remaining(what))
        except TimeoutError:
            raise self.deadline.exceeded(what) from None

    def run_until(self, when: datetime, what: str) -> None:
        """Run every orchestration up to virtual time `when` (work due at or before it included); later work waits."""
        engine = self.stack.server.engine
        assert isinstance(engine, DurableEngine)
        try:
            engine.run_until(when, timeout=self.deadline.remaining(what))
        except TimeoutError:
            raise self.deadline.exceeded(what) from None

    def deliver(self, delivery: Delivery) -> None:
        """One Event Hub message to the starter (one event), after its barrier or at its time; waits for the invocation.

        Barrier: `after_s`, or implicitly a redeploy, which comes after the earlier deployment's scans. `at_s`: the
        app runs up to that virtual time (no barrier: what is still running keeps running), then the message goes in.
        """
        redeployed = self._operations.redeploys(delivery.body)
        late = ""
        if delivery.at_s is not None:
            when = self._started + timedelta(seconds=delivery.at_s)
            if when > self.stack.clock.now():
                self.run_until(when, f"running the orchestrations up to message {delivery.index} (at_s)")
            elif when < self.stack.clock.now():
                late = f" (at_s {delivery.at_s:g}: late, an earlier barrier ran past it)"
        elif delivery.after_s is not None or redeployed:
            self.settle(f"running the orchestrations before message {delivery.index}")
            gap = timedelta(seconds=delivery.after_s or 0)
            # At least a second later than everything before: stored times then order the waves.
            self.stack.clock.advance_to(max(self._last_delivery + gap, self.stack.clock.now() + BARRIER_STEP))
        self._digest_if_window_passed()
        if self.before_delivery is not None:
            self.before_delivery()
        # The workloads it deletes leave the simulator now, at its delivery time, not while the app still runs up to
        # it (a sweep due earlier would otherwise miss a workload that still existed).
        deleted = retire_deleted(self.stack, delivery.body)
        note = (f" ({delivery.note})" if delivery.note else "") + late
        if redeployed and delivery.after_s is None and delivery.at_s is None:
            note += f" (redeploys {', '.join(redeployed)}: delivered after the earlier scans finished)"
        if deleted:
            note += f" (deletes {', '.join(deleted)}: gone from the simulator)"
        self.log(f"message {delivery.index} at +{self.virtual_elapsed()}{note}")
        self.arrivals[delivery.index] = (self.stack.clock.now() - self._started).total_seconds()
        # Cardinality many: a JSON array input is one event per item; a one-item array keeps the body as it is.
        response = self.session.post(
            f"{self.base_url}/admin/functions/{EVENTHUB_STARTER_FUNCTION}",
            json={"input": json.dumps([delivery.body])},
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code != 202:
            raise HarnessError(f"devhost refused message {delivery.index}: HTTP {response.status_code}")
        record = self._wait_invocation(response.headers[INVOCATION_HEADER], delivery.index)
        self._last_delivery = self.stack.clock.now()
        self.deliveries.delivered += 1
        if record.get("status") != "succeeded":
            self.deliveries.failed.append(f"message {delivery.index}: {record.get('error') or record.get('status')}")

    def _wait_invocation(self, invocation_id: str, index: int | str) -> dict[str, Any]:
        while True:
            self.deadline.remaining(f"the starter handled message {index}" if isinstance(index, int) else index)
            response = self.session.get(f"{self.base_url}/admin/devhost/invocations", timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            record = next((r for r in response.json() if r.get("id") == invocation_id), None)
            if record is None:
                raise HarnessError(f"devhost lost the invocation of message {index}")
            if record.get("status") != RUNNING:
                return dict(record)
            time.sleep(INVOCATION_POLL_S)  # a real HTTP call in flight, not simulated time

    @property
    def started(self) -> datetime:
        """The virtual time the run started (`at_s` 0)."""
        return self._started

    def virtual_elapsed(self) -> str:
        """Virtual time since the run started, as `12m05s`."""
        seconds = int((self.stack.clock.now() - self._started).total_seconds())
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def orchestrations(self) -> list[dict[str, Any]]:
        """Every orchestration instance (entities left out), from the durable status API."""
        response = self.session.get(
            f"{self.base_url}{INSTANCES_PATH}", params={"showInput": "false"}, timeout=HTTP_TIMEOUT_S
        )
        response.raise_for_status()
        return [i for i in response.json() if not str(i.get("instanceId", "")).startswith(ENTITY_ID_PREFIX)]

    def finish(self) -> list[dict[str, Any]]:
        """Run to idle, then check that every orchestration is terminal; returns their statuses."""
        self.settle("waiting for the orchestrations to finish")
        instances = self.orchestrations()
        stuck = [i["instanceId"] for i in instances if i.get("runtimeStatus") not in TERMINAL_STATUSES]
        if stuck:
            raise HarnessError(f"devhost is idle but {len(stuck)} orchestration(s) are not terminal: {stuck[:5]}")
        return instances
