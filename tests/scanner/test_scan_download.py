"""scan.sh without QScanner on PATH: download from a loopback server, SHA256 verification, clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.scanner.conftest import DOWNLOAD_SCRIPT_PATH, ScanHarness, ScanRun

pytestmark = pytest.mark.azurite

NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7.2"
EXIT_SCANNER_UNAVAILABLE = 3


def statuses(run: ScanRun, count: int) -> list[dict[str, Any]]:
    return [json.loads(run.blob(i, "status.json")) for i in range(count)]


@pytest.mark.parametrize("artifact", ["qscanner.tar.gz", "qscanner.gz", "qscanner"], ids=["tarball", "gzip", "binary"])
def test_a_pinned_download_is_verified_and_used(harness: ScanHarness, artifact: str) -> None:
    server = harness.downloads
    env = {"QSCANNER_DOWNLOAD_URL": f"{server.base_url}/{artifact}", "QSCANNER_SHA256": server.sha256[artifact].upper()}
    before = len(server.requests)

    run = harness.run([NGINX, REDIS], qscanner_on_path=False, env=env)

    assert run.returncode == 0, run.stderr
    assert "SHA256 verified" in run.stdout
    assert server.requests[before:] == [f"/{artifact}"]  # once for all images, no sidecar checksum
    assert [s["result"] for s in statuses(run, 2)] == ["ok", "ok"]
    assert len(run.invocations) == 4


@pytest.mark.parametrize("version", ["4.8.0-2", "v4.8.0-2"])
def test_the_documented_download_script_is_pinned_and_run_without_secrets(harness: ScanHarness, version: str) -> None:
    """No URL: the version's download_qscanner.sh (qscanner.md "Distribution"); its SHA256 is the pin."""
    server = harness.downloads
    script_url = f"{server.base_url}/{DOWNLOAD_SCRIPT_PATH}"
    env = {"QSCANNER_DOWNLOAD_URL": script_url, "QSCANNER_SHA256": server.sha256[DOWNLOAD_SCRIPT_PATH]}
    env["QSCANNER_VERSION"] = version
    before = len(server.requests)

    run = harness.run([NGINX], qscanner_on_path=False, env=env)

    assert run.returncode == 0, run.stderr
    assert server.requests[before:] == [f"/{DOWNLOAD_SCRIPT_PATH}", "/qscanner"]
    assert statuses(run, 1)[0]["result"] == "ok"
    names = set((server.directory / "script-env-names").read_text().split())
    assert not names & {"QUALYS_ACCESS_TOKEN", "QUALYS_CLIENT_SECRET", "RESULTS_SAS_URL", "AZURE_CLIENT_SECRET"}


@pytest.mark.parametrize(
    ("env", "reason", "asked"),
    [
        ({"QSCANNER_DOWNLOAD_URL": "{base}/qscanner.tar.gz"}, "QSCANNER_SHA256 is not set", False),
        ({"QSCANNER_DOWNLOAD_URL": None}, "QSCANNER_SHA256 is not set", False),
        ({"QSCANNER_DOWNLOAD_URL": "{base}/qscanner.tar.gz", "QSCANNER_SHA256": "1" * 64}, "checksum mismatch", True),
        (
            {"QSCANNER_DOWNLOAD_URL": "{base}/missing.tar.gz", "QSCANNER_SHA256": "1" * 64},
            "download of QScanner failed",
            True,
        ),
    ],
    ids=["unpinned-url", "unpinned-default", "bad-pinned-checksum", "download-404"],
)
def test_a_failed_or_unpinned_download_ends_the_run_with_an_error_per_image(
    harness: ScanHarness, env: dict[str, str | None], reason: str, asked: bool
) -> None:
    images = [NGINX, REDIS]
    resolved = {
        name: None if value is None else value.format(base=harness.downloads.base_url) for name, value in env.items()
    }
    resolved.setdefault("QSCANNER_SHA256", None)
    before = len(harness.downloads.requests)

    run = harness.run(images, qscanner_on_path=False, env=resolved)

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert reason in run.stderr
    assert run.invocations == []  # nothing was executed
    assert bool(harness.downloads.requests[before:]) == asked  # an unpinned download is not even fetched
    assert sorted(run.blobs) == ["0/status.json", "1/status.json"]
    for index, (ref, status) in enumerate(zip(images, statuses(run, 2), strict=True)):
        assert (status["image"], status["index"], status["result"], status["exit_code"]) == (ref, index, "error", -1)
        assert reason in status["error"] and status["files"] == [] and status["digest"] == ""
    assert run.leftovers == []


@pytest.mark.parametrize("version", ["4.8.0-2", "v4.8.0-2", "V4.8.0-2"])
def test_the_default_download_is_the_versions_documented_script(harness: ScanHarness, version: str) -> None:
    """Offline here, so the official URL fails; the run must still end cleanly with a download error."""
    run = harness.run(
        [NGINX],
        qscanner_on_path=False,
        env={
            "QSCANNER_DOWNLOAD_URL": None,
            "QSCANNER_VERSION": version,
            "QSCANNER_SHA256": "2" * 64,
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
        },
    )

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert "https://www.qualys.com/qscanner/download/4.8.0-2/download_qscanner.sh" in run.stdout
    assert statuses(run, 1)[0]["result"] == "error"


# What scan.sh and the fake QScanner call, without tar and gzip (as on an Azure Linux base image).
BASE_IMAGE_TOOLS = (
    "bash", "curl", "date", "mktemp", "rm", "mkdir", "od", "tr", "sha256sum", "uname", "wc", "tail", "cat",
    "timeout", "chmod", "env", "cut",
)  # fmt: skip


def minimal_tools(directory: Path, *, with_tdnf: bool) -> Path:
    directory.mkdir()
    for tool in BASE_IMAGE_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (directory / tool).symlink_to(found)
    if with_tdnf:  # a fake tdnf that "installs" a package by linking the host's tool into the directory
        fake = directory / "tdnf"
        fake.write_text(
            "#!/bin/bash\n"
            f'echo "$*" >>"{directory}/tdnf.log"\n'
            'for name in "$@"; do case $name in install|-*) ;; *) '
            f'/bin/ln -s "$(PATH=/usr/bin:/bin /usr/bin/which "$name")" "{directory}/$name" ;; esac; done\n'
        )
        fake.chmod(0o755)
    return directory


def test_missing_tar_and_gzip_are_installed_with_tdnf(harness: ScanHarness, tmp_path: Path) -> None:
    tools = minimal_tools(tmp_path / "tools", with_tdnf=True)
    url = f"{harness.downloads.base_url}/qscanner.tar.gz"

    env = {
        "PATH": str(tools),
        "QSCANNER_DOWNLOAD_URL": url,
        "QSCANNER_SHA256": harness.downloads.sha256["qscanner.tar.gz"],
    }
    run = harness.run([NGINX], qscanner_on_path=False, env=env)

    assert run.returncode == 0, run.stderr
    assert (tools / "tdnf.log").read_text().splitlines() == ["install -y -q gzip", "install -y -q tar"]
    assert statuses(run, 1)[0]["result"] == "ok"


def test_without_tar_gzip_or_tdnf_the_run_ends_with_a_clear_error(harness: ScanHarness, tmp_path: Path) -> None:
    tools = minimal_tools(tmp_path / "tools", with_tdnf=False)
    url = f"{harness.downloads.base_url}/qscanner.tar.gz"

    env = {
        "PATH": str(tools),
        "QSCANNER_DOWNLOAD_URL": url,
        "QSCANNER_SHA256": harness.downloads.sha256["qscanner.tar.gz"],
    }
    run = harness.run([NGINX], qscanner_on_path=False, env=env)

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert "gzip is needed to unpack the QScanner download" in run.stderr
    assert statuses(run, 1)[0]["result"] == "error"
