"""The wave generator (benchmarks.waves): deterministic, valid scenarios with shared images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.waves import MAX_SCAN_S, MIN_SCAN_S, POPULAR_IMAGES, generate, main
from devhost.demo_scenario import parse_scenario


def test_same_arguments_same_wave_and_a_valid_scenario() -> None:
    first = generate(40, 3, arrival="spread", spread_s=300, hangs=1, failures=2)
    assert first == generate(40, 3, arrival="spread", spread_s=300, hangs=1, failures=2)
    assert first != generate(40, 4, arrival="spread", spread_s=300, hangs=1, failures=2)
    scenario = parse_scenario(first)
    times = [d.at_s for d in scenario.deliveries]
    assert len(times) == 40 and all(t is not None and 0 <= t <= 300 for t in times)
    assert [r["result"] for r in first["scans"].values()].count("hang") == 1
    assert [r["result"] for r in first["scans"].values()].count("error") == 2


def test_one_to_three_images_with_popular_bases_shared_and_scans_of_60_to_300_s() -> None:
    wave = generate(200, 1)
    sizes = [len(resource["images"]) for resource in wave["resources"]]
    assert min(sizes) >= 1 and max(sizes) <= 3
    popular = {ref for ref, _ in POPULAR_IMAGES}
    shared = [image for resource in wave["resources"] for image in resource["images"] if image in popular]
    assert len(shared) > len(set(shared))  # popular images are asked for by several deployments
    assert all(MIN_SCAN_S <= scan["duration_s"] <= MAX_SCAN_S for scan in wave["scans"].values())
    assert all(not isinstance(message, dict) or "at_s" not in message for message in wave["messages"])


def test_the_cli_writes_the_file_and_refuses_bad_sizes(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    assert main(["--deployments", "5", "--seed", "2", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == generate(5, 2)
    assert main(["--deployments", "0", "--out", str(out)]) == 2
    with pytest.raises(ValueError):
        generate(3, 1, hangs=2, failures=2)
