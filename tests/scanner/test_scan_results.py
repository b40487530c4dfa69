"""scan.sh with a fake QScanner on PATH: the upload contract per mode and format, result mapping, time limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost import qscanner_output as q
from tests.scanner.conftest import ScanHarness, ScanRun

pytestmark = pytest.mark.azurite

NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7.2"
APP = "myregistry.azurecr.io/team/app@sha256:" + "ab" * 32
BUSYBOX = "docker.io/library/busybox:1.36"
STATUS_KEYS = {"image", "index", "exit_code", "result", "started_at", "finished_at", "digest", "mode", "files"}
REPORTS = ("report.sarif.json", "report.json")
INVENTORY = ("scanresult.json", "sbom.spdx.json")


def status_of(run: ScanRun, index: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run.blob(index, "status.json"))
    return document


def blobs_of(run: ScanRun, index: int) -> set[str]:
    return {name.split("/", 1)[1] for name in run.blobs if name.startswith(f"{index}/")}


def option(run: ScanRun, name: str, invocation: int = 0) -> str | None:
    """The value scan.sh gave QScanner for `--name` in its `invocation`-th call, None when absent."""
    args = [line for line in run.invocations if line.startswith("ARGS")][invocation]
    words = args.removeprefix("ARGS [").removesuffix("]").split("] [")
    return words[words.index(name) + 1] if name in words else None


def test_get_report_uploads_sarif_json_inventory_sbom_log_then_status(harness: ScanHarness) -> None:
    run = harness.run([NGINX, APP])

    assert run.returncode == 0, run.stderr
    for index, ref in enumerate([NGINX, APP]):
        expected = {*REPORTS, *INVENTORY, "scan.log"}
        assert blobs_of(run, index) == expected | {"status.json"}
        status = status_of(run, index)
        assert set(status) == STATUS_KEYS
        assert (status["image"], status["index"], status["result"], status["exit_code"]) == (ref, index, "ok", 0)
        assert (status["mode"], status["digest"]) == ("get-report", "")  # the app reads RepoDigests instead
        assert set(status["files"]) == expected and status["files"][-1] == "scan.log"
        assert status["started_at"].endswith("Z") and status["started_at"] <= status["finished_at"]
        scan = q.ImageScan(ref=ref, findings=q.findings_from_counts({5: 1, 4: 1, 2: 1, 1: 1}, seed=ref))
        # Verbatim: the blobs are QScanner's files byte for byte.
        files = q.output_files(
            scan,
            mode="get-report",
            report_formats=("sarif", "json"),
            inventory_formats=("json", "spdx"),
            scan_types=("os", "sca", "secret"),
        )
        names = q.file_names(scan.config_id)
        assert run.blob(index, "report.sarif.json") == files[names["sarif"]]
        assert run.blob(index, "report.json") == files[names["json"]]
        assert run.blob(index, "scanresult.json") == files[names["scanresult"]]
        assert run.blob(index, "sbom.spdx.json") == files[names["spdx"]]
        log = run.blob(index, "scan.log").decode()
        assert "Vulnerability report received" in log and "4 vulnerabilities found!" in log
    inventory = json.loads(run.blob(1, "scanresult.json"))["Metadata"]["TargetMetadata"]["ImageMetadata"]
    assert inventory["RepoTags"] == [] and inventory["RepoDigests"] == [
        f"myregistry.azurecr.io/team/app@sha256:{'ab' * 32}"
    ]
    assert inventory["ImageID"] != "sha256:" + "ab" * 32  # the file-name id is the config digest
    assert run.leftovers == []  # the work directory (with QScanner's raw log) is removed


def test_qscanner_gets_the_documented_command_line(harness: ScanHarness) -> None:
    run = harness.run(
        [NGINX], env={"QSCANNER_MODE": "evaluate-policy", "POLICY_TAGS": "prod gate", "SCAN_TYPES": "os,sca"}
    )

    assert run.returncode == 0, run.stderr
    args = run.invocations[0]
    assert args.startswith("ARGS [--pod] [US2] [--scan-types] [os,sca] [--mode] [evaluate-policy]")
    assert "[--policy-tags] [prod gate]" in args
    assert (option(run, "--report-format"), option(run, "--format")) == ("sarif,json", "json,spdx")
    assert args.endswith(f"[image] [{NGINX}]")


@pytest.mark.parametrize(
    ("env", "report_format", "inventory_format", "expected"),
    [
        ({}, "sarif,json", "json,spdx", {*REPORTS, *INVENTORY}),
        ({"QSCANNER_REPORT_FORMATS": "sarif"}, "sarif", "json,spdx", {"report.sarif.json", *INVENTORY}),
        ({"QSCANNER_REPORT_FORMATS": "json,table"}, "json,table", "json,spdx", {"report.json", *INVENTORY}),
        ({"QSCANNER_REPORT_FORMATS": "sarif,gitlab"}, "sarif,gitlab", "json,spdx", {"report.sarif.json", *INVENTORY}),
        (
            {"QSCANNER_SBOM_FORMAT": "cyclonedx"},
            "sarif,json",
            "json,cyclonedx",
            {*REPORTS, "scanresult.json", "sbom.cyclonedx.json"},
        ),
        ({"QSCANNER_SBOM_FORMAT": "none"}, "sarif,json", "json", {*REPORTS, "scanresult.json"}),
    ],
    ids=["default", "sarif-only", "json-table", "gitlab-not-uploaded", "cyclonedx", "no-sbom"],
)
def test_format_settings_choose_the_files(
    harness: ScanHarness, env: dict[str, str], report_format: str, inventory_format: str, expected: set[str]
) -> None:
    run = harness.run([NGINX], env=env)

    assert run.returncode == 0, run.stderr
    assert (option(run, "--report-format"), option(run, "--format")) == (report_format, inventory_format)
    assert blobs_of(run, 0) == expected | {"scan.log", "status.json"}
    assert set(status_of(run, 0)["files"]) == expected | {"scan.log"}


@pytest.mark.parametrize("mode", ["scan-only", "inventory-only"])
def test_modes_without_a_report_upload_the_inventory_and_are_ok(harness: ScanHarness, mode: str) -> None:
    run = harness.run([NGINX], env={"QSCANNER_MODE": mode, "QSCANNER_REPORT_FORMATS": "table"})  # no report: fine

    assert run.returncode == 0, run.stderr
    assert option(run, "--report-format") is None  # no report is fetched in these modes
    assert option(run, "--mode") == mode
    assert blobs_of(run, 0) == {*INVENTORY, "scan.log", "status.json"}
    status = status_of(run, 0)
    assert (status["result"], status["exit_code"], status["mode"]) == ("ok", 0, mode)
    assert "Vulnerability report received" not in run.blob(0, "scan.log").decode()


def test_ok_deny_audit_in_evaluate_policy_mode(harness: ScanHarness) -> None:
    run = harness.run(
        [NGINX, REDIS, APP], f"{NGINX}=ok\n{REDIS}=deny\n{APP}=audit", env={"QSCANNER_MODE": "evaluate-policy"}
    )

    assert run.returncode == 0, run.stderr
    for index, (ref, result, code) in enumerate([(NGINX, "ok", 0), (REDIS, "deny", 42), (APP, "audit", 43)]):
        status = status_of(run, index)
        assert (status["image"], status["result"], status["exit_code"], status["mode"]) == (
            ref,
            result,
            code,
            "evaluate-policy",
        )
        assert {*REPORTS, *INVENTORY} <= blobs_of(run, index)
    assert len(run.invocations) == 6  # one ARGS and one ENV_NAMES line per image


def test_policy_tags_are_passed_only_in_evaluate_policy_mode(harness: ScanHarness) -> None:
    run = harness.run([NGINX], env={"POLICY_TAGS": "prod"})

    assert run.returncode == 0, run.stderr
    assert "--policy-tags" not in run.invocations[0]


@pytest.mark.parametrize(
    ("per_image", "scan_timeout"),
    [("600", "300s"), ("900", "600s"), ("1800", "1500s"), ("400", "200s"), ("30", "15s"), ("1", "1s")],
)
def test_the_scan_timeout_leaves_room_for_the_report_fetch(
    harness: ScanHarness, per_image: str, scan_timeout: str
) -> None:
    run = harness.run([NGINX], env={"SCAN_TIMEOUT_PER_IMAGE": per_image})

    assert run.returncode == 0, run.stderr
    assert option(run, "--scan-timeout") == scan_timeout


def test_an_error_is_recorded_and_makes_the_exit_code_non_zero(harness: ScanHarness) -> None:
    run = harness.run([NGINX, REDIS], f"{NGINX}=error\n*=ok")

    assert run.returncode == 1
    failed = status_of(run, 0)
    assert (failed["result"], failed["exit_code"], failed["digest"], failed["files"]) == ("error", 6, "", ["scan.log"])
    assert blobs_of(run, 0) == {"scan.log", "status.json"}
    assert b"failed to fetch image" in run.blob(0, "scan.log")
    assert status_of(run, 1)["result"] == "ok"  # the next image is still scanned


def test_a_report_that_was_not_received_is_an_error_with_the_inventory(harness: ScanHarness) -> None:
    run = harness.run([NGINX], "*=reportfail")

    assert run.returncode == 1
    status = status_of(run, 0)
    assert (status["result"], status["exit_code"]) == ("error", 40)
    assert blobs_of(run, 0) == {*INVENTORY, "scan.log", "status.json"}


def test_success_without_a_report_uploads_what_was_written(harness: ScanHarness) -> None:
    """A scanner that exits 0 without a report: scan.sh uploads what exists; the app decides (never a clean result)."""
    run = harness.run([NGINX], "*=noreport")

    assert run.returncode == 0, run.stderr
    assert blobs_of(run, 0) == {*INVENTORY, "scan.log", "status.json"}
    assert status_of(run, 0)["result"] == "ok"


def test_only_contract_files_are_uploaded_and_oversized_ones_are_noted(harness: ScanHarness) -> None:
    """Stray files are never uploaded; a file over the app's 32 MiB limit is skipped and the log says so."""
    wrapper = harness.fake_bin / "qscanner"
    real = harness.fake_bin / "qscanner-real"
    wrapper.rename(real)
    wrapper.write_text(
        "#!/bin/bash\n"
        'out=""; prev=""; for a in "$@"; do [[ $prev == --output-dir ]] && out=$a; prev=$a; done\n'
        f'"{real}" "$@" || exit $?\n'
        'echo secret >"$out/creds.json"; mkdir -p "$out/sub"; echo x >"$out/sub/notes.txt"\n'
        'f=$(ls "$out"/*-ScanResult.spdx.json); truncate -s 33554433 "$f"\n'
    )
    wrapper.chmod(0o755)

    run = harness.run([NGINX], env={"PATH": f"{harness.fake_bin}:/usr/local/bin:/usr/bin:/bin"})

    assert run.returncode == 0, run.stderr
    assert blobs_of(run, 0) == {*REPORTS, "scanresult.json", "scan.log", "status.json"}
    assert "sbom.spdx.json not uploaded: 33554433 bytes" in run.blob(0, "scan.log").decode()


def test_a_hanging_scan_is_killed_at_the_limit_and_recorded_as_timeout(harness: ScanHarness) -> None:
    run = harness.run([NGINX, REDIS], f"{NGINX}=hang\n*=ok", env={"SCAN_TIMEOUT_PER_IMAGE": "1"})

    assert run.returncode == 1
    status = status_of(run, 0)
    assert (status["result"], status["exit_code"]) == ("timeout", 124)
    assert status_of(run, 1)["result"] == "ok"
    assert run.elapsed < 10


@pytest.mark.slow
def test_a_scan_that_ignores_term_is_killed(harness: ScanHarness) -> None:
    run = harness.run([NGINX], "*=stubborn", env={"SCAN_TIMEOUT_PER_IMAGE": "1", "SCAN_KILL_AFTER": "1"})

    assert run.returncode == 1
    status = status_of(run, 0)
    assert (status["result"], status["exit_code"]) == ("timeout", 137)
    assert run.elapsed < 10


def test_an_upload_refused_by_storage_fails_the_run_without_leaking_the_sas(harness: ScanHarness) -> None:
    read_only = harness.sas_url.replace("sp=cw", "sp=r")
    assert read_only != harness.sas_url
    run = harness.run([NGINX], env={"RESULTS_SAS_URL": read_only})

    assert run.returncode == 1
    assert "upload of 0/status.json failed" in run.stderr
    assert run.blobs == {}
    for secret in harness.secrets():
        assert secret not in run.stdout + run.stderr
