"""checkov scans infra/ offline: every file parses, enough checks run, none fails, skips come only from config."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from tests.infra import checkov_env
from tests.infra.bicep_model import INFRA_DIR
from tests.infra.checkov_env import CHECKOV_CONFIG, finish_checkov, load_yaml, start_checkov

pytestmark = pytest.mark.slow

MIN_CHECKS_EXECUTED = 25
MIN_REASON_WORDS = 5
CHECK_ID = re.compile(r"CKV2?_[A-Z]+_\d+")
STORAGE_MODULE = "app/storage.bicep"
WEAKENINGS = {"supportsHttpsTrafficOnly: true": "supportsHttpsTrafficOnly: false", "'TLS1_2'": "'TLS1_0'"}
HTTPS_ONLY_CHECK, TLS12_CHECK = "CKV_AZURE_3", "CKV_AZURE_44"


def _configured_skips() -> list[str]:
    config = load_yaml(CHECKOV_CONFIG)
    skips = config.get("skip-check", [])
    assert isinstance(skips, list)
    return [str(skip) for skip in skips]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Three scans side by side: infra/ as configured; only the skipped checks, over a copy without the config;
    and the configured scan of a copy whose storage module was weakened on purpose."""
    skipped = _configured_skips()
    assert skipped, "the skip checks below assume at least one configured skip"
    home = tmp_path_factory.mktemp("home")
    unconfigured = tmp_path_factory.mktemp("unconfigured") / "infra"
    shutil.copytree(INFRA_DIR, unconfigured, ignore=shutil.ignore_patterns(CHECKOV_CONFIG.name))
    weakened = tmp_path_factory.mktemp("weakened") / "infra"
    shutil.copytree(INFRA_DIR, weakened)
    storage = weakened / STORAGE_MODULE
    storage.write_text(_weaken(storage.read_text(encoding="utf-8")), encoding="utf-8")
    processes = {
        "configured": start_checkov(INFRA_DIR, home, "--config-file", str(CHECKOV_CONFIG)),
        "skipped_only": start_checkov(unconfigured, home, "--check", ",".join(skipped)),
        "weakened": start_checkov(weakened, home, "--config-file", str(weakened / CHECKOV_CONFIG.name)),
    }
    try:
        return {name: finish_checkov(process) for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _weaken(storage_bicep: str) -> str:
    """The storage module with HTTPS-only and TLS 1.2 turned off, to prove the scan sees module files."""
    for secure, weak in WEAKENINGS.items():
        assert secure in storage_bicep, f"{STORAGE_MODULE} no longer contains {secure!r}"
        storage_bicep = storage_bicep.replace(secure, weak)
    return storage_bicep


def test_every_file_parses(reports):
    assert reports["configured"]["results"]["parsing_errors"] == []
    assert reports["configured"]["summary"]["parsing_errors"] == 0


def test_enough_checks_run(reports):
    summary = reports["configured"]["summary"]
    assert summary["passed"] + summary["failed"] >= MIN_CHECKS_EXECUTED, summary


def test_no_check_fails(reports):
    failed = [
        f"{item['check_id']} {item['resource']} ({item['file_path']}): {item['check_name']}"
        for item in reports["configured"]["results"]["failed_checks"]
    ]
    assert failed == []


def test_nothing_is_skipped_inline(reports):
    assert reports["configured"]["results"]["skipped_checks"] == []
    for path in INFRA_DIR.rglob("*.bicep"):
        assert "checkov:skip" not in path.read_text(encoding="utf-8"), f"{path}: skips belong in .checkov.yaml"


def test_every_configured_skip_has_a_written_reason():
    lines = CHECKOV_CONFIG.read_text(encoding="utf-8").splitlines()
    for skip in _configured_skips():
        assert CHECK_ID.fullmatch(skip), f"{skip} is not a check id"
        (index,) = [i for i, line in enumerate(lines) if line.strip() == f"- {skip}"]
        reason: list[str] = []
        while index > 0 and lines[index - 1].strip().startswith("#"):
            index -= 1
            reason.insert(0, lines[index].strip().lstrip("#").strip())
        assert len(" ".join(reason).split()) >= MIN_REASON_WORDS, f"{skip}: write why it is skipped above it"


def test_every_configured_skip_still_matches_a_failing_resource(reports):
    # A skip whose check passes (or no longer applies) hides nothing and must go.
    skips = set(_configured_skips())
    still_failing = {item["check_id"] for item in reports["skipped_only"]["results"]["failed_checks"]}
    assert skips - still_failing == set(), "stale skips in infra/.checkov.yaml"


def test_a_missing_checkov_environment_fails_with_directions(monkeypatch, tmp_path):
    monkeypatch.setattr(checkov_env, "CHECKOV", tmp_path / "absent" / "checkov")
    with pytest.raises(AssertionError, match="make setup"):
        checkov_env.require_checkov()


def test_the_scan_catches_a_weakened_module(reports):
    failed = {(item["check_id"], item["file_path"]) for item in reports["weakened"]["results"]["failed_checks"]}
    assert failed == {(HTTPS_ONLY_CHECK, f"/{STORAGE_MODULE}"), (TLS12_CHECK, f"/{STORAGE_MODULE}")}
