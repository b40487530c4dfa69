"""`python -m devhost serve` as a subprocess: it answers on a free port, logs JSON access lines, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.devhost.server_support import SAMPLE_APP_PATH, TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"devhost listening on (http://127\.0\.0\.1:\d+)")


def test_serve_subprocess_answers_and_stops_cleanly(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "devhost",
        "serve",
        "--app",
        str(SAMPLE_APP_PATH),
        "--port",
        "0",
        "--clock",
        "virtual",
    ]
    command += ["--store", str(tmp_path / "state.sqlite")]
    process = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ}
    )
    assert process.stderr is not None
    try:
        base_url = ""
        seen: list[str] = []
        for line in process.stderr:
            seen.append(line)
            if found := LISTENING.search(line):
                base_url = found.group(1)
                break
        assert base_url, "".join(seen)

        assert requests.get(f"{base_url}/api/hello/world", timeout=TIMEOUT).text == "hello world"
        started = requests.post(
            f"{base_url}/runtime/webhooks/durabletask/orchestrators/greeter/sub-1",
            json={"name": "ann"},
            timeout=TIMEOUT,
        )
        assert started.status_code == 202
        assert requests.post(f"{base_url}/admin/devhost/idle", timeout=TIMEOUT).status_code == 200
        status = requests.get(started.json()["statusQueryGetUri"], timeout=TIMEOUT)
        assert (status.status_code, status.json()["output"]) == (200, "hello ann")
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, rest
    access = [json.loads(line) for line in rest.splitlines() if line.startswith('{"event": "http"')]
    assert {"event": "http", "method": "GET", "path": "/api/hello/world", "status": 200}.items() <= access[0].items()
