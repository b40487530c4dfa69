"""`python -m devhost run`: prints the final status and exits 0 only when the orchestration completed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devhost.__main__ import EXIT_NOT_COMPLETED, EXIT_OK, EXIT_USAGE, main
from tests.devhost.conftest import app_path

ROOT = Path(__file__).resolve().parents[2]


def test_run_prints_the_status_and_exits_zero_when_completed(capsys, tmp_path):
    code = main(["run", "--app", app_path("basic_app"), "--orchestrator", "hello_sequence", "--input", '"Zed"',
                 "--store", str(tmp_path / "cli.sqlite")])  # fmt: skip
    status = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    assert set(status) == {
        "name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime", "lastUpdatedTime",
    }  # fmt: skip
    assert status["output"][0] == "Hello Zed"


def test_run_exits_non_zero_for_a_failed_orchestration(capsys):
    code = main(["run", "--app", app_path("features_app"), "--orchestrator", "crashes"])
    assert code == EXIT_NOT_COMPLETED
    assert json.loads(capsys.readouterr().out)["runtimeStatus"] == "Failed"


def test_run_rejects_an_unknown_orchestrator_and_bad_input(capsys):
    assert main(["run", "--app", app_path("basic_app"), "--orchestrator", "nope"]) == EXIT_USAGE
    assert (
        main(["run", "--app", app_path("basic_app"), "--orchestrator", "hello_sequence", "--input", "{"]) == EXIT_USAGE
    )


def test_module_entry_point_runs_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "run", "--app", app_path("basic_app"), "--orchestrator", "hello_sequence"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"][0] == "Hello world"
