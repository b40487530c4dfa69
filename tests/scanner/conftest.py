"""Fixtures that run the real scanner/scan.sh: a fake QScanner, a loopback download server and Azurite via a SAS."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from devhost.azurite import ACCOUNT, KEY, Azurite
from tests.loopback import loopback_http_server

ROOT = Path(__file__).resolve().parents[2]
SCAN_SCRIPT = ROOT / "scanner" / "scan.sh"
FAKE_QSCANNER = Path(__file__).with_name("fake_qscanner")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"
SCRIPT_RUN_TIMEOUT_SECONDS = 60

# Values the fake QScanner prints to its log; none may survive into any output or upload.
ACCESS_TOKEN = "tok-3f9a1c-ACCESS-TOKEN-VALUE"
CLIENT_ID = "client-id-77d1e0"
CLIENT_SECRET = "client-secret-5b2e44-VALUE"
REGISTRY_PASSWORD = "registry-password-9c1d"
AZURE_CLIENT_SECRET = "azure-client-secret-0e7f"


@dataclass
class DownloadServer:
    """A loopback HTTP server with fake QScanner downloads; `requests` records the paths asked for."""

    base_url: str
    sha256: dict[str, str]
    directory: Path
    requests: list[str] = field(default_factory=list)


PYTHON_SHEBANG = b"#!/usr/bin/env python3\n"
DOWNLOAD_SCRIPT_PATH = "4.8.0-2/download_qscanner.sh"


def fake_qscanner_bytes() -> bytes:
    """The fake QScanner, run by this venv's Python when it is a Python script (it imports devhost modules)."""
    script = FAKE_QSCANNER.read_bytes()
    if script.startswith(PYTHON_SHEBANG):
        script = f"#!{sys.executable}\n".encode() + script[len(PYTHON_SHEBANG) :]
    return script


def _fake_tarball(script: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("linux-amd64/qscanner")
        info.size, info.mode = len(script), 0o755
        archive.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


def _download_script(base_url: str, env_record: Path) -> bytes:
    """A stand-in for Qualys' download_qscanner.sh: fetches the binary into linux-amd64/qscanner (unconfirmed)."""
    return (
        "#!/bin/bash\nset -euo pipefail\n"
        f'env | cut -d= -f1 | sort >"{env_record}"\n'
        "mkdir -p linux-amd64\n"
        f'curl -fsS -o linux-amd64/qscanner "{base_url}/qscanner"\n'
        "chmod 0755 linux-amd64/qscanner\n"
    ).encode()


def _write_downloads(directory: Path) -> dict[str, str]:
    script = fake_qscanner_bytes()
    artifacts = {"qscanner.tar.gz": _fake_tarball(script), "qscanner.gz": gzip.compress(script), "qscanner": script}
    digests: dict[str, str] = {}
    for name, content in artifacts.items():
        (directory / name).write_bytes(content)
        digests[name] = hashlib.sha256(content).hexdigest()
    return digests


@pytest.fixture(scope="session")
def download_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DownloadServer]:
    directory = tmp_path_factory.mktemp("downloads")
    server_state = DownloadServer(base_url="", sha256=_write_downloads(directory), directory=directory)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with loopback_http_server(partial(Handler, directory=str(directory))) as server_state.base_url:
        script = _download_script(server_state.base_url, directory / "script-env-names")
        (directory / DOWNLOAD_SCRIPT_PATH).parent.mkdir(parents=True)
        (directory / DOWNLOAD_SCRIPT_PATH).write_bytes(script)
        server_state.sha256[DOWNLOAD_SCRIPT_PATH] = hashlib.sha256(script).hexdigest()
        yield server_state


@dataclass
class ScanRun:
    """What one run of scan.sh did: its exit code and output, QScanner invocations, and the uploaded blobs."""

    returncode: int
    stdout: str
    stderr: str
    invocations: list[str]
    blobs: dict[str, bytes]
    elapsed: float
    leftovers: list[str]

    def blob(self, index: int, name: str) -> bytes:
        return self.blobs[f"{index}/{name}"]

    def everything(self) -> str:
        """All output and uploads as one text, for secret searches."""
        parts = [self.stdout, self.stderr, *(b.decode("utf-8", "replace") for b in self.blobs.values())]
        return "\n".join(parts)


class ScanHarness:
    """Runs scan.sh against a fresh Azurite container, reached only through a create+write SAS."""

    def __init__(self, azurite: Azurite, workdir: Path, downloads: DownloadServer) -> None:
        self.downloads = downloads
        self.workdir = workdir
        self.prefix = f"scan-{uuid.uuid4().hex[:16]}"
        self.container_name = f"uploads-{uuid.uuid4().hex[:12]}"
        self.service = BlobServiceClient.from_connection_string(azurite.connection_string)
        self.container = self.service.create_container(self.container_name)
        self.sas = generate_container_sas(
            account_name=ACCOUNT,
            container_name=self.container_name,
            account_key=KEY,
            permission=ContainerSasPermissions(create=True, write=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        self.sas_url = f"{azurite.blob_endpoint}/{self.container_name}?{self.sas}"
        self.signature = parse_qs(self.sas)["sig"][0]
        self.fake_bin = workdir / "bin"
        self.fake_bin.mkdir()
        (self.fake_bin / "qscanner").write_bytes(fake_qscanner_bytes())
        (self.fake_bin / "qscanner").chmod(0o755)
        self.record = workdir / "invocations.txt"

    def secrets(self) -> list[str]:
        """Every secret value that must never appear in output or uploads (raw and URL-encoded signature too)."""
        encoded_signature = next(part.split("=", 1)[1] for part in self.sas.split("&") if part.startswith("sig="))
        values = [ACCESS_TOKEN, CLIENT_SECRET, CLIENT_ID, REGISTRY_PASSWORD, AZURE_CLIENT_SECRET]
        return [*values, self.signature, encoded_signature]

    def base_env(self, images: list[str], behaviour: str) -> dict[str, str]:
        home, tmp = self.workdir / "home", self.workdir / "tmp"
        home.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        return {
            "PATH": f"{self.fake_bin}:{SYSTEM_PATH}",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "SCAN_IMAGES": "\n".join(images),
            "QUALYS_POD": "US2",
            "QUALYS_ACCESS_TOKEN": ACCESS_TOKEN,
            "QUALYS_CLIENT_ID": CLIENT_ID,
            "QUALYS_CLIENT_SECRET": CLIENT_SECRET,
            "QSCANNER_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "AZURE_CLIENT_SECRET": AZURE_CLIENT_SECRET,
            "SCAN_TYPES": "os,sca,secret",
            "QSCANNER_VERSION": "4.8.0-2",
            "SCAN_TIMEOUT_PER_IMAGE": "30",
            "QSCANNER_MODE": "get-report",
            "RESULTS_SAS_URL": self.sas_url,
            "RESULTS_PREFIX": self.prefix,
            "FAKE_QSCANNER_BEHAVIOUR": behaviour,
            "FAKE_QSCANNER_RECORD": str(self.record),
            "PYTHONPATH": str(ROOT),  # the fake QScanner imports devhost.qscanner_output
        }

    def run(
        self,
        images: list[str],
        behaviour: str = "*=ok",
        *,
        qscanner_on_path: bool = True,
        env: Mapping[str, str | None] | None = None,
    ) -> ScanRun:
        full_env = self.base_env(images, behaviour)
        if not qscanner_on_path:
            full_env["PATH"] = SYSTEM_PATH
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        started = time.monotonic()
        completed = subprocess.run(
            ["bash", str(SCAN_SCRIPT)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_RUN_TIMEOUT_SECONDS,
            check=False,
        )
        elapsed = time.monotonic() - started
        invocations = self.record.read_text().splitlines() if self.record.exists() else []
        tmp = Path(full_env.get("TMPDIR", self.workdir / "tmp"))
        return ScanRun(
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            invocations=invocations,
            blobs=self.uploaded(),
            elapsed=elapsed,
            leftovers=sorted(os.listdir(tmp)) if tmp.is_dir() else [],
        )

    def uploaded(self) -> dict[str, bytes]:
        """Blobs under this run's prefix, keyed by the path below the prefix ('0/status.json')."""
        found: dict[str, bytes] = {}
        for item in self.container.list_blobs():
            name = str(item.name)
            key = name.removeprefix(f"{self.prefix}/") if name.startswith(f"{self.prefix}/") else f"!{name}"
            found[key] = self.container.download_blob(name).readall()
        return found

    def close(self) -> None:
        """Delete the container and close pooled connections (open ones would hold Azurite's shutdown)."""
        self.container.delete_container()
        self.container.close()
        self.service.close()


@pytest.fixture
def harness(azurite: Azurite, tmp_path: Path, download_server: DownloadServer) -> Iterator[ScanHarness]:
    running = ScanHarness(azurite, tmp_path, download_server)
    try:
        yield running
    finally:
        running.close()
