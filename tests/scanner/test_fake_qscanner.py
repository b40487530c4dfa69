"""The fake QScanner itself behaves as QScanner's README documents (flags, defaults, file names, modes, log, exits)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devhost import qscanner_output as q
from tests.scanner.conftest import ROOT, fake_qscanner_bytes

NGINX = "docker.io/library/nginx:1.27"
PINNED = "ghcr.io/acme/app@sha256:" + "cd" * 32


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    path = tmp_path / "qscanner"
    path.write_bytes(fake_qscanner_bytes())
    path.chmod(0o755)
    return path


def run(
    fake: Path, tmp_path: Path, *args: str, behaviour: str = "*=ok"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "FAKE_QSCANNER_BEHAVIOUR": behaviour,
    }
    done = subprocess.run(
        [str(fake), "--pod", "US2", "--output-dir", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done, out


def test_default_formats_are_table_and_sarif_plus_the_json_inventory(fake: Path, tmp_path: Path) -> None:
    done, out = run(fake, tmp_path, "image", NGINX)

    assert done.returncode == 0, done.stderr
    image_id = q.config_digest(NGINX).removeprefix("sha256:")
    assert sorted(p.name for p in out.iterdir()) == [f"{image_id}-Report.sarif.json", f"{image_id}-ScanResult.json"]
    assert image_id != q.manifest_digest(NGINX).removeprefix("sha256:")
    lines = done.stdout.splitlines()
    assert {"Image source: remote", "Vulnerability report received", "4 vulnerabilities found!"} <= set(lines)
    assert [line for line in lines if line.startswith("Severity ")] == [
        f"Severity {k}: {n}" for k, n in zip((5, 4, 3, 2, 1), (1, 1, 0, 1, 1), strict=True)
    ]


def test_json_report_and_spdx_when_asked(fake: Path, tmp_path: Path) -> None:
    done, out = run(fake, tmp_path, "--report-format", "json,sarif", "--format", "json,spdx", "image", PINNED)

    assert done.returncode == 0, done.stderr
    suffixes = sorted(p.name.split("-", 1)[1] for p in out.iterdir())
    assert suffixes == ["Report.json", "Report.sarif.json", "ScanResult.json", "ScanResult.spdx.json"]
    inventory = json.loads(next(out.glob("*-ScanResult.json")).read_text())
    meta = inventory["Metadata"]["TargetMetadata"]["ImageMetadata"]
    assert meta["RepoDigests"] == [PINNED] and meta["RepoTags"] == []
    assert {"SchemaVersion", "QScannerVersion", "ScansPerformed", "OSResults", "SCAResults", "SecretResults"} <= set(
        inventory
    )


@pytest.mark.parametrize("mode", ["scan-only", "inventory-only"])
def test_modes_without_a_report(fake: Path, tmp_path: Path, mode: str) -> None:
    done, out = run(fake, tmp_path, "--mode", mode, "--report-format", "sarif,json", "image", NGINX)

    assert done.returncode == 0, done.stderr
    assert [p.name.split("-", 1)[1] for p in out.iterdir()] == ["ScanResult.json"]
    assert "Vulnerability report received" not in done.stdout


@pytest.mark.parametrize(
    ("args", "behaviour", "code"),
    [
        (["--bogus", "image", NGINX], "*=ok", 2),
        (["--report-format", "pdf", "image", NGINX], "*=ok", 2),
        (["--mode", "fast", "image", NGINX], "*=ok", 2),
        (["--scan-timeout", "five", "image", NGINX], "*=ok", 2),
        (["image"], "*=ok", 2),
        (["image", NGINX], "*=deny", 2),  # 42/43 only in evaluate-policy mode
        (["--mode", "evaluate-policy", "--policy-tags", "p", "image", NGINX], "*=deny", 42),
        (["--mode", "evaluate-policy", "--policy-tags", "p", "image", NGINX], "*=audit", 43),
        (["--scan-timeout", "300s", "image", NGINX], "*=error", 6),
        (["image", NGINX], "*=reportfail", 40),
    ],
)
def test_exit_codes_follow_the_readme(fake: Path, tmp_path: Path, args: list[str], behaviour: str, code: int) -> None:
    done, _ = run(fake, tmp_path, *args, behaviour=behaviour)
    assert done.returncode == code, done.stderr
