"""`python -m devhost run` driven from a shell, as a checker would: exit codes, status JSON, app paths and folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from devhost.__main__ import EXIT_NOT_COMPLETED, EXIT_OK, EXIT_USAGE, STATUS_FIELDS, main
from tests.devhost.conftest import APPS, app_path

ROOT = Path(__file__).resolve().parents[2]


def devhost_run(app: str, orchestrator: str, input_json: str | None = None) -> tuple[int, dict[str, Any], str]:
    command = [sys.executable, "-m", "devhost", "run", "--app", app, "--orchestrator", orchestrator]
    command += ["--clock", "virtual"]
    if input_json is not None:
        command += ["--input", input_json]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    status = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, status, result.stderr


def test_completed_and_failed_runs_print_the_status_fields():
    code, status, _ = devhost_run(app_path("probe_patterns_app"), "fan_out_fan_in", "50")
    assert code == EXIT_OK
    assert tuple(status) == STATUS_FIELDS
    assert (status["name"], status["runtimeStatus"], status["input"], status["output"]) == (
        "fan_out_fan_in", "Completed", 50, 2450,
    )  # fmt: skip

    code, status, _ = devhost_run(app_path("probe_patterns_app"), "orchestrator_raises")
    assert code == EXIT_NOT_COMPLETED
    assert status["runtimeStatus"] == "Failed"
    assert "orchestrator exploded" in status["output"]


def test_an_app_folder_elsewhere_with_a_sibling_blueprint_module(tmp_path: Path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    shutil.copy(APPS / "probe_blueprint_app.py", folder / "function_app.py")
    shutil.copy(APPS / "probe_blueprint_bp.py", folder / "probe_blueprint_bp.py")

    code, status, stderr = devhost_run(str(folder / "function_app.py"), "local_orchestrator", '"path"')
    assert code == EXIT_OK, stderr
    assert status["output"] == {"inner": "blueprint greets path"}
    code, status, stderr = devhost_run(str(folder), "bp_orchestrator", '"folder"')  # the app's root folder
    assert code == EXIT_OK, stderr
    assert status["output"] == "blueprint greets folder"


def test_an_instance_id_the_extension_refuses_is_a_usage_error(capsys):
    for bad in ("@counter@k", "a#b", "x" * 257):
        args = ["run", "--app", app_path("probe_client_app"), "--orchestrator", "quick", "--instance-id", bad]
        assert main(args) == EXIT_USAGE
        error = capsys.readouterr().err
        assert "Orchestration instance ids must not" in error or "Instance ID lengths must not exceed 256" in error


def test_an_app_that_fails_to_import_is_a_usage_error_with_its_traceback(tmp_path: Path):
    broken = tmp_path / "broken_app.py"
    broken.write_text('import azure.durable_functions as df\napp = df.DFApp()\nraise RuntimeError("bad setting")\n')
    code, status, stderr = devhost_run(str(broken), "anything")
    assert (code, status) == (EXIT_USAGE, {})
    assert 'raise RuntimeError("bad setting")' in stderr
    assert stderr.strip().endswith("RuntimeError: bad setting")
