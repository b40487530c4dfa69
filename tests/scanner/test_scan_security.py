"""scan.sh hygiene: secrets scrubbed everywhere, hostile references and bad settings refused before anything runs."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.images import InvalidImageRef, parse_image_ref
from tests.scanner.conftest import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    SCAN_SCRIPT,
    SHELLCHECK,
    SYSTEM_PATH,
    ScanHarness,
)

NGINX = "docker.io/library/nginx:1.27"
EXIT_INVALID_INPUT = 2


def run_sourced(snippet: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `snippet` in bash after sourcing scan.sh (which then defines its functions without running)."""
    return subprocess.run(
        ["bash", "-c", f'source "$1"; shift; {snippet}', "scan-test", str(SCAN_SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PATH": SYSTEM_PATH},
        timeout=30,
        check=False,
    )


def test_the_script_is_shellcheck_clean() -> None:
    result = subprocess.run([str(SHELLCHECK), str(SCAN_SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_script_never_traces() -> None:
    code = [line for line in SCAN_SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "set -x" in line or "xtrace" in line or "-o xtrace" in line]


@pytest.mark.azurite
def test_secrets_are_scrubbed_from_output_and_uploads(harness: ScanHarness) -> None:
    run = harness.run([NGINX, "docker.io/library/redis:7.2"], "*=error")  # error: the log tail is printed too

    assert run.returncode == 1
    log = run.blob(0, "scan.log").decode()
    assert "Image source: remote" in log
    assert "Authorization: Bearer [REDACTED]" in log
    everything = run.everything()
    arguments = "\n".join(line for line in run.invocations if line.startswith("ARGS"))
    for secret in harness.secrets():
        assert secret not in everything
        assert secret not in arguments  # QScanner's command line (what `ps` would show)
    assert "[REDACTED]" in run.stderr  # the printed log tail went through the scrubber


@pytest.mark.azurite
def test_qscanner_never_sees_the_results_sas(harness: ScanHarness) -> None:
    run = harness.run([NGINX])

    env_names = next(line for line in run.invocations if line.startswith("ENV_NAMES")).split()
    assert "RESULTS_SAS_URL" not in env_names
    assert {"QUALYS_ACCESS_TOKEN", "QUALYS_CLIENT_SECRET", "HOME", "TMPDIR"} <= set(env_names)


HOSTILE_REFERENCES = [
    "nginx;rm -rf /",
    "$(id)",
    "`id`",
    "nginx && id",
    "nginx|id",
    "--help",
    "-v",
    "--pod=EU1",
    f"{NGINX} --help",
    f"{NGINX}\n--help",
    f"{NGINX}\n\ndocker.io/library/redis:7.2",
    f"{NGINX}\r",
    " nginx",
    "nginx\t",
    "../../etc/passwd",
    "docker.io/library/NGINX:1",
    "docker.io/library/ngin\u0445:1",
    "docker.io/library/nginx:" + "a" * 129,
    "a" * 1025,
    "docker.io/library/nginx@sha256:zz",
    "http://evil.example/x",
    "nginx:1.27$IFS",
    "nginx:1.27\\",
    "'nginx'",
]


@pytest.mark.azurite
@pytest.mark.parametrize("reference", HOSTILE_REFERENCES, ids=[f"ref{n}" for n in range(len(HOSTILE_REFERENCES))])
def test_a_hostile_reference_is_refused_before_anything_runs(harness: ScanHarness, reference: str) -> None:
    run = harness.run([NGINX, reference])

    assert run.returncode == EXIT_INVALID_INPUT
    assert "is not a valid image reference; nothing was scanned" in run.stderr
    assert run.invocations == []
    assert run.blobs == {}
    assert run.stdout == ""


@pytest.mark.azurite
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCAN_IMAGES": ""}, "SCAN_IMAGES is empty"),
        ({"RESULTS_SAS_URL": None}, "RESULTS_SAS_URL must be a container URL with a SAS query"),
        ({"RESULTS_PREFIX": "../other"}, "RESULTS_PREFIX"),
        ({"QUALYS_POD": "us2;id"}, "QUALYS_POD"),
        ({"QUALYS_ACCESS_TOKEN": None, "QUALYS_CLIENT_SECRET": None}, "QUALYS_ACCESS_TOKEN"),
        ({"SCAN_TYPES": "os --mode x"}, "SCAN_TYPES"),
        ({"QSCANNER_MODE": "get-report scan-only"}, "QSCANNER_MODE"),
        ({"POLICY_TAGS": "--help"}, "POLICY_TAGS"),
        ({"SCAN_TIMEOUT_PER_IMAGE": "0"}, "SCAN_TIMEOUT_PER_IMAGE"),
        ({"QSCANNER_DOWNLOAD_URL": "file:///etc/passwd"}, "QSCANNER_DOWNLOAD_URL"),
        ({"QSCANNER_SHA256": "abc"}, "QSCANNER_SHA256"),
        ({"QSCANNER_VERSION": "4.8"}, "QSCANNER_VERSION"),
        ({"QSCANNER_VERSION": "vv4.8.0-2"}, "QSCANNER_VERSION"),
        ({"QSCANNER_REPORT_FORMATS": "sarif,pdf"}, "QSCANNER_REPORT_FORMATS"),
        ({"QSCANNER_REPORT_FORMATS": "sarif json"}, "QSCANNER_REPORT_FORMATS"),
        ({"QSCANNER_REPORT_FORMATS": "table,gitlab"}, "must hold sarif or json in get-report mode"),
        (
            {"QSCANNER_REPORT_FORMATS": "table", "QSCANNER_MODE": "evaluate-policy"},
            "must hold sarif or json in evaluate-policy mode",
        ),
        ({"QSCANNER_SBOM_FORMAT": "json"}, "QSCANNER_SBOM_FORMAT"),
        ({"QSCANNER_SBOM_FORMAT": "spdx,cyclonedx"}, "QSCANNER_SBOM_FORMAT"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_bad_settings_are_refused_before_anything_runs(
    harness: ScanHarness, env: dict[str, str | None], message: str
) -> None:
    run = harness.run([NGINX], env=env)

    assert run.returncode == EXIT_INVALID_INPUT
    assert message in run.stderr
    assert run.invocations == []
    assert run.blobs == {}
    assert ACCESS_TOKEN not in run.stderr and CLIENT_SECRET not in run.stderr
    assert harness.signature not in run.stderr


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and backslash \\', "new\nline\ttab\rcr", "bell\x07 esc\x1b nul-free\x01", "é ü 漢字"],
)
def test_json_string_escapes_anything(text: str) -> None:
    result = run_sourced('json_string "$1"', text)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == text


def test_percent_decoding_of_the_signature() -> None:
    result = run_sourced('percent_decode "$1"', "ab%2Bc%2Fd%3D")
    assert result.stdout == "ab+c/d="


VALID_REFERENCES = [
    "docker.io/library/nginx:1.27",
    "mcr.microsoft.com/azurelinux/base/core:3.0",
    "myregistry.azurecr.io/team/app@sha256:" + "ab" * 32,
    "ghcr.io/org/img:v1.2.3-rc.1@sha256:" + "0f" * 32,
    "localhost:5000/a__b/c-d--e.f:latest",
    "[::1]:5000/x/y:z",
    "registry-1.example.com:443/a/b/c/d:TAG_1",
]


def accepted(references: list[str]) -> list[bool]:
    script = "while IFS= read -r line; do if [[ $line =~ $RE_IMAGE_REF ]]; then echo 1; else echo 0; fi; done"
    result = run_sourced(script, stdin="".join(f"{ref}\n" for ref in references))
    assert result.returncode == 0, result.stderr
    return [flag == "1" for flag in result.stdout.split()]


def test_valid_references_are_accepted() -> None:
    assert accepted(VALID_REFERENCES) == [True] * len(VALID_REFERENCES)


_component = st.from_regex(r"[a-z0-9]{1,8}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,8}){0,2}", fullmatch=True)
_registry = st.from_regex(
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?(?:\.[a-z]{2,6}){1,2}(?::[0-9]{2,5})?", fullmatch=True
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@st.composite
def _references(draw: st.DrawFn) -> str:
    registry = draw(st.one_of(st.none(), _registry))
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    tag = draw(st.one_of(st.none(), _tag))
    digest = draw(st.one_of(st.none(), _digest))
    text = (f"{registry}/" if registry else "") + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    try:
        return parse_image_ref(text).canonical
    except InvalidImageRef:  # e.g. a first path component with "." is read as a registry
        assume(False)
        raise


@settings(max_examples=25, deadline=None)
@given(st.lists(_references(), min_size=1, max_size=20))
def test_every_canonical_reference_of_core_images_is_accepted(references: list[str]) -> None:
    assert accepted(references) == [True] * len(references)
