"""`python -m devhost.demo --scenario PATH --out DIR`: run a scenario end to end on loopback and summarise it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from activities import wallclock
from activities.notify_store import alert_counts
from core.queue_payloads import SCAN_BATCH_ORCHESTRATOR
from core.settings import SettingsError
from devhost.demo_exceptions import ExpiryTimer, InlineExceptionsError, start_exceptions
from devhost.demo_exports import EXPORTS_DIR, save_exports
from devhost.demo_inventory import INVENTORY_FILE, Sweeps, export_inventory, is_sweep, sweep_summary
from devhost.demo_metrics import METRICS_FILE, DemoMetrics
from devhost.demo_report import (
    ORCHESTRATIONS_FILE,
    REPORTS_DIR,
    SUMMARY_FILE,
    RunRecord,
    build_summary,
    image_outcomes,
    orchestration_details,
    render_table,
    rescan_summary,
    run_records,
    save_reports,
    summary_line,
    write_json,
)
from devhost.demo_rescans import RescanTimer, chain, is_rescan_run, rescans_started
from devhost.demo_run import Deadline, Driver, HarnessError, seed_cache
from devhost.demo_scenario import ScenarioError, load_demo_scenario
from devhost.demo_scheduling import NOT_SCANNED, demands_of, limits_of, lower_bound_s, measure
from devhost.demo_stack import APP_SPEC, DemoStack, running_stack
from devhost.engine import DurableEngine
from devhost.functions import AppLoadError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_HARNESS_ERROR = 3
DEFAULT_SCENARIO = "scenarios/sample.json"
DEFAULT_OUT = "demo-out"
DEFAULT_TIMEOUT_S = 300.0
LOG_FILE = "demo.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def echo(message: str) -> None:
    """Progress for the person running the demo (stderr; the results go to stdout)."""
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _log_to_file(path: Path) -> tuple[logging.FileHandler, list[logging.Handler]]:
    """The app's and devhost's logs go to a file, so the terminal shows only the demo's own output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    displaced = list(root.handlers)
    for existing in displaced:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd: a deprecation warning per AUTH
    return handler, displaced


def _scheduling(
    stack: DemoStack,
    driver: Driver,
    records: Sequence[RunRecord],
    instances: Sequence[Mapping[str, Any]],
    batches: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """summary.json's `scheduling` block from the simulator's group lives, the scan records and the scenario.

    A result counts as recorded when a deployment's scan record holds it, or when the scan queue's batch runner
    (`scan_batch`) stored it (its output says when, image by image). History events are the deployment
    orchestrations' (the batch runners' are a cost of the groups, like ARM requests).
    """
    engine = stack.server.engine
    assert isinstance(engine, DurableEngine)
    start, end = driver.started, stack.clock.now()
    stats = stack.sim_stats()
    demands, durations = demands_of(stack.scenario, stack.settings, driver.arrivals)
    limits = limits_of(stack.settings, stack.scenario.sim.sim_settings())
    stored = [record for record in records if record.finished_at >= start]
    recorded = [(r.image, rec.finished_at) for rec in stored for r in rec.results if r.status not in NOT_SCANNED]
    recorded += batch_recorded(batches)
    return measure(
        start=start,
        end=end,
        lives=stack.sim.state.timeline.lives(),
        recorded=recorded,
        makespan_end=max([record.finished_at for record in stored] + [at for _, at in recorded], default=start),
        lower_bound=lower_bound_s(demands, durations, limits),
        images_started=int(stats.get("scans", {}).get("images_started", 0)),
        history_events=[len(engine.history(str(instance["instanceId"]))) for instance in instances],
        by_group=stats.get("by_group", {}),
    )


def batch_recorded(batches: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime]]:
    """(image, when stored) from the outputs of the scan queue's batch runners."""
    found: list[tuple[str, datetime]] = []
    for batch in batches:
        output = batch.get("output")
        recorded = output.get("recorded") if isinstance(output, Mapping) else None
        for image, at in (recorded or {}).items():
            found.append((str(image), datetime.fromisoformat(str(at))))
    return found


def _report(
    stack: DemoStack, driver: Driver, out: Path, expiry: ExpiryTimer | None = None, metrics: DemoMetrics | None = None
) -> dict[str, Any]:
    """Read the run's results from the app's store and write summary.json, orchestrations.json, metrics.json."""
    listed = [i for i in driver.orchestrations() if not is_sweep(i) and not is_rescan_run(i)]
    instances = [i for i in listed if i.get("name") != SCAN_BATCH_ORCHESTRATOR]  # the deployments' scans
    batches = [i for i in listed if i.get("name") == SCAN_BATCH_ORCHESTRATOR]
    records = run_records(stack.settings, instances)
    summary = build_summary(
        instances,
        outcomes=image_outcomes(records),
        sim_stats=stack.sim_stats(),
        emails=stack.smtp.count,
        webhooks=stack.webhook.count,
        extra_notifications={"teams": stack.chat_count("teams"), "slack": stack.chat_count("slack")}
        | alert_counts(stack.settings),
    )
    summary["scheduling"] = _scheduling(stack, driver, records, instances, batches)
    summary["sweeps"] = sweep_summary(stack.settings)
    summary["rescans"] = rescan_summary(stack.settings, rescans_started(instances))
    export_inventory(driver.base_url, driver.session, out)
    if expiry is not None and expiry.loaded:
        summary["exceptions"] = expiry.summary(stack)
    write_json(out / SUMMARY_FILE, summary)
    if metrics is not None:
        write_json(out / METRICS_FILE, metrics.snapshot())
    write_json(out / ORCHESTRATIONS_FILE, orchestration_details(records))
    save_reports(stack.settings, summary, out / REPORTS_DIR)
    save_exports(stack.server.base_url, summary, out / EXPORTS_DIR)
    return summary


def _print_results(summary: dict[str, Any], stack: DemoStack, out: Path, failed_deliveries: list[str]) -> None:
    print(render_table(summary))
    print()
    print(summary_line(summary))
    for failure in failed_deliveries:
        print(f"note: the starter failed on {failure}")
    print(f"summary:        {out / SUMMARY_FILE}")
    print(f"orchestrations: {out / ORCHESTRATIONS_FILE}")
    print(f"inventory:      {out / INVENTORY_FILE} (sweeps: {summary['sweeps']})")
    print(f"metrics:        {out / METRICS_FILE} (OpenTelemetry, in-memory reader)")
    print(f"reports:        {out / REPORTS_DIR}/*.json (copies: the URLs above end with the run)")
    print(f"exports:        {out / EXPORTS_DIR}/ (GET /api/images/{{key}}/report and /sbom; index.json)")
    print(f"e-mails:        {stack.mail_dir}/*.eml ({summary['notifications']['email']})")
    print(f"webhooks:       {stack.webhook_dir}/*.json ({summary['notifications']['webhook']})")
    for name in stack.chat or {}:
        print(f"{name + ':':<15} {out / name}/*.json ({summary['notifications'][name]})")
    print(f"logs:           {out / LOG_FILE}")


def run_demo(scenario_path: Path, out: Path, timeout_s: float = DEFAULT_TIMEOUT_S, app_spec: str = APP_SPEC) -> int:
    """Run the scenario; 0 when the run completed (whatever the scans' outcomes), non-zero on a harness error."""
    try:
        scenario = load_demo_scenario(scenario_path)
    except ScenarioError as error:
        echo(f"invalid scenario: {error}")
        return EXIT_BAD_INPUT
    out.mkdir(parents=True, exist_ok=True)
    for stale in (SUMMARY_FILE, ORCHESTRATIONS_FILE, INVENTORY_FILE, METRICS_FILE):
        (out / stale).unlink(missing_ok=True)
    handler, displaced = _log_to_file(out / LOG_FILE)
    deadline = Deadline(timeout_s)
    metrics = DemoMetrics()
    echo(f"scenario {scenario_path}: {scenario.description or f'{len(scenario.deliveries)} message(s)'}")
    try:
        with running_stack(scenario, out, echo, app_spec) as stack:
            driver = Driver(stack, deadline, echo)
            failure: HarnessError | None = None
            expiry: ExpiryTimer | None = None
            try:
                seed_cache(stack, scenario.cache)
                rescans = RescanTimer(driver)
                sweeps = Sweeps(scenario.sweeps_at_s, driver, echo, after_sweep=rescans.due)
                expiry = start_exceptions(stack, driver, scenario.exceptions)
                driver.before_delivery = chain(expiry.due, rescans.due)
                for delivery in scenario.deliveries:
                    sweeps.due(delivery.at_s if delivery.at_s is not None else sweeps.elapsed_s())
                    driver.deliver(delivery)
                sweeps.due(None)
                driver.finish()
                expiry.run_out()
                rescans.run_out()
                driver.flush_digests("the last window")
                driver.deliveries.failed += sweeps.refused
                echo(f"all orchestrations finished at +{driver.virtual_elapsed()} virtual time")
            except HarnessError as error:
                failure = error
            summary = _report(stack, driver, out, expiry, metrics)
            driver.close()
            _print_results(summary, stack, out, driver.deliveries.failed)
            if failure is not None:
                raise failure
    except SettingsError as error:
        echo(f"the scenario's settings are invalid: {error}")
        return EXIT_BAD_INPUT
    except InlineExceptionsError as error:
        echo(f"invalid scenario: exceptions: {error}")
        return EXIT_BAD_INPUT
    except (HarnessError, AppLoadError, RuntimeError, OSError) as error:
        echo(f"error: {error} (see {out / LOG_FILE})")
        return EXIT_HARNESS_ERROR
    finally:
        wallclock.use(None)
        metrics.close()
        root = logging.getLogger()
        root.removeHandler(handler)
        handler.close()
        for previous in displaced:
            root.addHandler(previous)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.demo", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=Path(DEFAULT_SCENARIO), help="scenario JSON (docs/demo.md)")
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help="output directory")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="wall-clock safety limit of the run, seconds"
    )
    parser.add_argument(
        "--app", default=APP_SPEC, help="the app to host (module or .py file; default: function_app.py)"
    )
    args = parser.parse_args(argv)
    return run_demo(args.scenario, args.out, args.timeout, args.app)


if __name__ == "__main__":
    sys.exit(main())
