"""scan.sh without QScanner on PATH: download from a loopback server, SHA256 verification, clear failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.report import parse_status
from tests.scanner.conftest import ScanHarness

pytestmark = pytest.mark.azurite

NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7.2"
EXIT_SCANNER_UNAVAILABLE = 3


@pytest.mark.parametrize(
    ("artifact", "pinned"),
    [("qscanner.tar.gz", False), ("qscanner.tar.gz", True), ("qscanner.gz", True), ("qscanner", True)],
    ids=["tarball+sidecar-checksum", "tarball+pinned", "gzip+pinned", "binary+pinned"],
)
def test_the_download_is_verified_and_used(harness: ScanHarness, artifact: str, pinned: bool) -> None:
    server = harness.downloads
    env = {"QSCANNER_DOWNLOAD_URL": f"{server.base_url}/{artifact}"}
    if pinned:
        env["QSCANNER_SHA256"] = server.sha256[artifact].upper()  # case does not matter
    before = len(server.requests)

    run = harness.run([NGINX, REDIS], qscanner_on_path=False, env=env)

    assert run.returncode == 0, run.stderr
    assert "SHA256 verified" in run.stdout
    asked = server.requests[before:]
    assert asked == ([f"/{artifact}"] if pinned else [f"/{artifact}", f"/{artifact}.sha256"])  # once for all images
    assert [parse_status(run.blob(i, "status.json")).result for i in range(2)] == ["ok", "ok"]
    assert len(run.invocations) == 4


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"QSCANNER_DOWNLOAD_URL": "{base}/bad.tar.gz"}, "checksum mismatch"),
        ({"QSCANNER_DOWNLOAD_URL": "{base}/qscanner.tar.gz", "QSCANNER_SHA256": "1" * 64}, "checksum mismatch"),
        ({"QSCANNER_DOWNLOAD_URL": "{base}/missing.tar.gz"}, "download of QScanner failed"),
        ({"QSCANNER_DOWNLOAD_URL": "{base}/qscanner.gz"}, "download of the QScanner checksum failed"),
    ],
    ids=["bad-sidecar-checksum", "bad-pinned-checksum", "download-404", "checksum-404"],
)
def test_a_failed_download_or_checksum_ends_the_run_with_an_error_per_image(
    harness: ScanHarness, env: dict[str, str], reason: str
) -> None:
    images = [NGINX, REDIS]
    resolved = {name: value.format(base=harness.downloads.base_url) for name, value in env.items()}

    run = harness.run(images, qscanner_on_path=False, env=resolved)

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert reason in run.stderr
    assert run.invocations == []  # nothing was executed
    assert sorted(run.blobs) == ["0/status.json", "1/status.json"]
    for index, ref in enumerate(images):
        raw = run.blob(index, "status.json")
        status = parse_status(raw)
        assert (str(status.image), status.result, status.exit_code) == (ref, "error", -1)
        assert reason in raw.decode()
    assert run.leftovers == []


def test_the_default_download_location_is_used_when_no_url_is_given(harness: ScanHarness) -> None:
    """Offline here, so the official URL fails; the run must still end cleanly with a download error."""
    run = harness.run(
        [NGINX],
        qscanner_on_path=False,
        env={"QSCANNER_DOWNLOAD_URL": None, "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"},
    )

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert "https://www.qualys.com/qscanner/download/4.8.0-2/" in run.stdout
    assert parse_status(run.blob(0, "status.json")).result == "error"


# What scan.sh and the fake QScanner call, without tar and gzip (as on an Azure Linux base image).
BASE_IMAGE_TOOLS = (
    "bash", "curl", "date", "mktemp", "rm", "mkdir", "od", "tr", "sha256sum", "uname", "wc", "tail", "cat",
    "timeout", "chmod", "env", "cut", "sleep",
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

    run = harness.run([NGINX], qscanner_on_path=False, env={"PATH": str(tools), "QSCANNER_DOWNLOAD_URL": url})

    assert run.returncode == 0, run.stderr
    assert (tools / "tdnf.log").read_text().splitlines() == ["install -y -q gzip", "install -y -q tar"]
    assert parse_status(run.blob(0, "status.json")).result == "ok"


def test_without_tar_gzip_or_tdnf_the_run_ends_with_a_clear_error(harness: ScanHarness, tmp_path: Path) -> None:
    tools = minimal_tools(tmp_path / "tools", with_tdnf=False)
    url = f"{harness.downloads.base_url}/qscanner.tar.gz"

    run = harness.run([NGINX], qscanner_on_path=False, env={"PATH": str(tools), "QSCANNER_DOWNLOAD_URL": url})

    assert run.returncode == EXIT_SCANNER_UNAVAILABLE
    assert "gzip is needed to unpack the QScanner download" in run.stderr
    assert parse_status(run.blob(0, "status.json")).result == "error"
