"""scan.sh with a fake QScanner on PATH: per-image blobs, result mapping, exit codes and the time limit."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.report import parse_report, parse_status
from tests.scanner.conftest import ScanHarness

pytestmark = pytest.mark.azurite

NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7.2"
APP = "myregistry.azurecr.io/team/app@sha256:" + "ab" * 32
BUSYBOX = "docker.io/library/busybox:1.36"


def fake_digest(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def test_ok_deny_audit_each_get_their_blobs_and_exit_zero(harness: ScanHarness) -> None:
    run = harness.run([NGINX, REDIS, APP], f"{NGINX}=ok\n{REDIS}=deny\n{APP}=audit")

    assert run.returncode == 0, run.stderr
    assert sorted(run.blobs) == sorted(
        f"{i}/{name}" for i in range(3) for name in ("status.json", "report.json", "scan.log")
    )
    for index, (ref, result, code) in enumerate([(NGINX, "ok", 0), (REDIS, "deny", 42), (APP, "audit", 43)]):
        status = parse_status(run.blob(index, "status.json"))
        assert (str(status.image), status.index, status.result, status.exit_code) == (ref, index, result, code)
        assert status.digest == fake_digest(ref)
        assert status.started_at is not None and status.finished_at is not None
        assert status.started_at <= status.finished_at
        summary = parse_report(run.blob(index, "report.json"))
        assert summary.digest == fake_digest(ref)
    assert len(run.invocations) == 6  # one ARGS and one ENV_NAMES line per image
    assert run.leftovers == []  # the work directory (with QScanner's raw log) is removed


def test_qscanner_gets_the_documented_command_line(harness: ScanHarness) -> None:
    run = harness.run(
        [NGINX], env={"QSCANNER_MODE": "evaluate-policy", "POLICY_TAGS": "prod gate", "SCAN_TYPES": "os,sca"}
    )

    assert run.returncode == 0, run.stderr
    args = run.invocations[0]
    assert args.startswith("ARGS [--pod] [US2] [--scan-types] [os,sca] [--mode] [evaluate-policy]")
    assert "[--policy-tags] [prod gate]" in args
    assert "[--report-format] [json]" in args
    assert args.endswith(f"[image] [{NGINX}]")


def test_policy_tags_are_passed_only_in_evaluate_policy_mode(harness: ScanHarness) -> None:
    run = harness.run([NGINX], env={"POLICY_TAGS": "prod"})

    assert run.returncode == 0, run.stderr
    assert "--policy-tags" not in run.invocations[0]


def test_an_error_is_recorded_and_makes_the_exit_code_non_zero(harness: ScanHarness) -> None:
    run = harness.run([NGINX, REDIS], f"{NGINX}=error\n*=ok")

    assert run.returncode == 1
    failed = parse_status(run.blob(0, "status.json"))
    assert (failed.result, failed.exit_code, failed.digest) == ("error", 6, None)
    assert "0/report.json" not in run.blobs
    assert b"failed to fetch image" in run.blob(0, "scan.log")
    assert parse_status(run.blob(1, "status.json")).result == "ok"  # the next image is still scanned


def test_success_without_a_report_uploads_status_and_log_only(harness: ScanHarness) -> None:
    run = harness.run([NGINX], "*=noreport")

    assert run.returncode == 0, run.stderr
    assert sorted(run.blobs) == ["0/scan.log", "0/status.json"]
    status = parse_status(run.blob(0, "status.json"))
    assert (status.result, status.digest) == ("ok", None)


def test_a_hanging_scan_is_killed_at_the_limit_and_recorded_as_timeout(harness: ScanHarness) -> None:
    run = harness.run([NGINX, REDIS], f"{NGINX}=hang\n*=ok", env={"SCAN_TIMEOUT_PER_IMAGE": "1"})

    assert run.returncode == 1
    status = parse_status(run.blob(0, "status.json"))
    assert (status.result, status.exit_code) == ("timeout", 124)
    assert parse_status(run.blob(1, "status.json")).result == "ok"
    assert run.elapsed < 10


@pytest.mark.slow
def test_a_scan_that_ignores_term_is_killed(harness: ScanHarness) -> None:
    run = harness.run([NGINX], "*=stubborn", env={"SCAN_TIMEOUT_PER_IMAGE": "1", "SCAN_KILL_AFTER": "1"})

    assert run.returncode == 1
    status = parse_status(run.blob(0, "status.json"))
    assert (status.result, status.exit_code) == ("timeout", 137)
    assert run.elapsed < 10


def test_status_json_is_plain_json_with_the_contract_fields(harness: ScanHarness) -> None:
    run = harness.run([APP])

    document = json.loads(run.blob(0, "status.json"))
    assert set(document) == {"image", "index", "exit_code", "result", "started_at", "finished_at", "digest"}
    assert document["started_at"].endswith("Z")


def test_an_upload_refused_by_storage_fails_the_run_without_leaking_the_sas(harness: ScanHarness) -> None:
    read_only = harness.sas_url.replace("sp=cw", "sp=r")
    assert read_only != harness.sas_url
    run = harness.run([NGINX], env={"RESULTS_SAS_URL": read_only})

    assert run.returncode == 1
    assert "upload of 0/status.json failed" in run.stderr
    assert run.blobs == {}
    for secret in harness.secrets():
        assert secret not in run.stdout + run.stderr
