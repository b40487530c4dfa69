"""`make demo` with scenarios/digest-wave.json: a wave of deployments gives one digest per channel, not one alert each;
a later redeploy with the same findings sends nothing, a new image a later window's digest; Teams and Slack receivers
accept what the app posts."""

from __future__ import annotations

import email
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.demo_support import ROOT, run_scenario

SCENARIO = ROOT / "scenarios" / "digest-wave.json"
WAVE_IMAGES = 5  # six deployments, nginx:1.27 twice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return run_scenario(SCENARIO, tmp_path_factory.mktemp("digest-out"))


def test_a_wave_is_one_digest_per_channel(run: tuple[dict[str, Any], Path]) -> None:
    summary, out = run
    assert summary["notifications"] == {
        "email": 2,  # the wave's window, and app-6's an hour later
        "webhook": 2,
        "teams": 2,
        "slack": 2,
        "suppressed_findings": 2,  # nginx:1.27's second workload in the window, and the redeploy an hour later
        "digests": 2,
    }
    mail = out / "mail" / "001.eml"
    body = email.message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"Needs attention ({WAVE_IMAGES} of {WAVE_IMAGES} images)" in body
    assert "workload: aci app-0 (demo-apps)" in body and "workload: aci app-1 (demo-apps)" in body
    hook = out / "webhooks" / "001.json"
    document = json.loads(hook.read_text())
    assert document["event"] == "scan.digest" and len(document["scans"]) == 6
    teams = out / "teams" / "001.json"
    card = json.loads(teams.read_text())["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and sum(1 for b in card["body"] if b["type"] == "Container") == WAVE_IMAGES
    slack = out / "slack" / "001.json"
    assert len(json.loads(slack.read_text())["blocks"]) == 3 + WAVE_IMAGES
    later = json.loads((out / "webhooks" / "002.json").read_text())
    assert [image["image"] for image in later["images"]] == ["docker.io/library/alpine:3.20"]
