"""Durability: a killed devhost restarted on the same store resumes activities and timers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devhost.clock import RealClock, VirtualClock
from tests.devhost.conftest import app_path

ROOT = Path(__file__).resolve().parents[2]
SPAWN_TIMEOUT_SECONDS = 60


def devhost_run(*args: str) -> list[str]:
    return [sys.executable, "-m", "devhost", "run", *args]


def test_timer_pending_at_shutdown_fires_after_restart(make_engine, tmp_path):
    store = str(tmp_path / "timers.sqlite")
    first = make_engine("slow_app", clock=RealClock(), store=store)
    first.start_new("timer_only", "two-hours", None)
    first.run_until_idle(timeout=30)
    assert first.get_status("two-hours")["runtimeStatus"] == "Running"
    first.close()
    second = make_engine("slow_app", clock=VirtualClock(), store=store)
    status = second.wait_for_completion("two-hours", timeout=30)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "fired"


@pytest.mark.slow
def test_sigkilled_devhost_resumes_the_in_flight_activity(tmp_path):
    store = str(tmp_path / "killed.sqlite")
    marker = tmp_path / "attempts"
    args = ["--app", app_path("slow_app"), "--orchestrator", "slow_then_done", "--instance-id", "resume-me"]
    args += ["--input", json.dumps(str(tmp_path)), "--store", store, "--clock", "virtual"]
    first = subprocess.Popen(devhost_run(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + SPAWN_TIMEOUT_SECONDS
    while not marker.exists():  # a real child process: poll for the activity's marker
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = subprocess.run(devhost_run(*args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    status = json.loads(second.stdout)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "attempt 2"
    assert marker.read_text() == "xx"
