"""The recorded cases of `scan_deployment`: scenario, settings, what the recorder does, and where it cuts.

Each case runs the real app on the recorder's devhost (tests/golden/recording.py) and names the instances whose
histories it keeps. A cut keeps the history as the store held it right after one episode (a scan in flight), plus
the episode that followed, so the replay test can check both that the cut history replays and that the next
actions are the recorded ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.naming import rescan_instance_id
from devhost import history as h
from devhost.armsim.testing import resource_id
from tests.golden.recording import EpisodeSnapshot, Recording
from tests.golden.replay import Episode

WEB = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
API = resource_id("Microsoft.App/containerApps", "api")
NGINX = "docker.io/library/nginx:1.27"
GROUP_GET = r"/containerGroups/qscan-[0-9a-f]+$"
OK_SCAN = {"result": "ok", "duration_s": 60, "vulnerabilities": {"HIGH": 1, "LOW": 2}}
QUOTA_REFUSALS = {"method": "PUT", "path": r"/containerGroups/qscan-", "status": 409, "times": 7,
                  "code": "ContainerGroupQuotaReached"}  # fmt: skip
Selector = Callable[[list[Episode], list[EpisodeSnapshot]], int | None]


def scenario(*resources: tuple[str, list[str]], scans: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resources": [{"id": rid, "images": images} for rid, images in resources],
        "scans": {"default": OK_SCAN, **(scans or {})},
    }


def _has_timer(episode: Episode) -> bool:
    return any(e[h.EVENT_TYPE] == h.EventType.TIMER_CREATED for e in episode.decisions)


def _schedules(episode: Episode, activity: str) -> bool:
    return any(e.get(h.NAME) == activity for e in episode.decisions if e[h.EVENT_TYPE] == h.EventType.TASK_SCHEDULED)


def first_episode(test: Callable[[Episode, dict[str, Any]], bool]) -> Selector:
    """The first episode (not the last one) for which `test(episode, custom status after it)` holds."""

    def select(episodes: list[Episode], snapshots: list[EpisodeSnapshot]) -> int | None:
        for index, (episode, snapshot) in enumerate(zip(episodes[:-1], snapshots, strict=False)):
            if test(episode, snapshot.custom_status or {}):
                return index
        return None

    return select


FIRST_POLL_PENDING = first_episode(lambda e, s: s.get("phase") == "scanning" and s["polls"] == 0 and _has_timer(e))
MID_POLL = first_episode(lambda e, s: s.get("phase") == "scanning" and s["polls"] >= 2 and _has_timer(e))
WAITING_FOR_QUOTA = first_episode(lambda e, s: s.get("phase") == "waiting_for_quota" and _has_timer(e))
WAITING_FOR_LEASE = first_episode(lambda e, s: _has_timer(e))
CLEANUP_IN_FLIGHT = first_episode(lambda e, s: _schedules(e, "store_results"))
DELETE_RETRY_PENDING = first_episode(lambda e, s: s.get("phase") == "storing" and _has_timer(e))


@dataclass(frozen=True)
class Case:
    """One recorded run: `drive` starts and runs orchestrations and returns {file name: instance id}."""

    name: str
    description: str
    scenario: dict[str, Any]
    drive: Callable[[Recording], dict[str, str]]
    settings: dict[str, str] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    cuts: dict[str, dict[str, Selector]] = field(default_factory=dict)
    """{file name: {cut label: selector}}."""
    files: tuple[str, ...] = ()
    """The completed files `drive` returns when not just the case's name."""

    @property
    def file_names(self) -> set[str]:
        """Every golden file (stem) this case writes."""
        cut_files = {f"{name}.cut_{label}" for name, cuts in self.cuts.items() for label in cuts}
        return set(self.files or (self.name,)) | cut_files


def one_deployment(name: str) -> Callable[[Recording], dict[str, str]]:
    def drive(run: Recording) -> dict[str, str]:
        instance_id = run.start_deployment(WEB)
        run.run()
        return {name: instance_id}

    return drive


def cache_hit(run: Recording) -> dict[str, str]:
    run.start_deployment(WEB)
    run.run()
    second = run.start_deployment(API)
    run.run()
    return {"cache_hit": second}


def manual_force(run: Recording) -> dict[str, str]:
    run.start_deployment(WEB)
    run.run()
    forced = run.start_image("nginx:1.27", rescan_instance_id(NGINX, "golden-1"), force=True)
    run.run()
    return {"manual_image_force": forced}


def shared_image(run: Recording) -> dict[str, str]:
    first, second = run.start_deployment(WEB), run.start_deployment(API)
    run.run()
    status = run.engine.get_status(first)
    assert status is not None
    holder = next(r["instance_id"] for r in status["output"]["images"] if r["image"] == NGINX)
    return {"shared_image_holder": holder, "shared_image_waiter": second if holder == first else first}


def quota_wait(run: Recording) -> dict[str, str]:
    first, second = run.start_deployment(WEB), run.start_deployment(API)
    run.run()
    waited = [i for i in (first, second) if any(s.custom_status and s.custom_status.get("phase") ==
                                                 "waiting_for_quota" for s in run.snapshots(i))]  # fmt: skip
    assert len(waited) == 1, waited
    return {"quota_wait_granted": waited[0]}


def poll_failure(run: Recording) -> dict[str, str]:
    instance_id = run.start_deployment(WEB)
    run.run_until(instance_id, "scanning")
    run.sim.inject("GET", GROUP_GET, 500, times=None)
    run.run()
    return {"poll_failure": instance_id}


def quota_wait_expired(run: Recording) -> dict[str, str]:
    holder = run.start_deployment(WEB)
    run.run_until(holder, "scanning")
    waiter = run.start_deployment(API)
    run.run()
    return {"quota_wait_expired": waiter}


def invalid_input(run: Recording) -> dict[str, str]:
    instance_id = run.start("invalid-golden-1", {"target": {"kind": "nope"}, "options": {}})
    run.run()
    return {"invalid_input": instance_id}


CASES: tuple[Case, ...] = (
    Case(
        "happy_three_images",
        "One ACI deployment with three images, all scanned clean in one scanner group.",
        scenario((WEB, ["nginx:1.27", "redis:7", "busybox"])),
        one_deployment("happy_three_images"),
        cuts={"happy_three_images": {"first_poll_pending": FIRST_POLL_PENDING, "cleanup_in_flight": CLEANUP_IN_FLIGHT}},
    ),
    Case(
        "cache_hit",
        "A second deployment of an image scanned minutes before: answered from the cache, no scanner group.",
        scenario((WEB, ["nginx:1.27"]), (API, ["nginx:1.27"])),
        cache_hit,
    ),
    Case(
        "manual_image_force",
        "A manual scan of one image with force=true right after a scan of it: the cache is bypassed.",
        scenario((WEB, ["nginx:1.27"])),
        manual_force,
    ),
    Case(
        "shared_image",
        "Two deployments started together share nginx: one holds its lease and scans, the other waits and reuses.",
        scenario((WEB, ["nginx:1.27", "redis:7"]), (API, ["nginx:1.27"])),
        shared_image,
        files=("shared_image_holder", "shared_image_waiter"),
        cuts={"shared_image_waiter": {"waiting_for_lease": WAITING_FOR_LEASE}},
    ),
    Case(
        "scan_timeout",
        "redis hangs in the scanner: nginx completes, redis times out after SCAN_TIMEOUT=600, the group is deleted.",
        scenario((WEB, ["nginx:1.27", "redis:7"]), scans={"docker.io/library/redis:7": {"result": "hang"}}),
        one_deployment("scan_timeout"),
        settings={"SCAN_TIMEOUT": "600"},
        cuts={"scan_timeout": {"mid_poll": MID_POLL}},
    ),
    Case(
        "quota_wait",
        "MAX_CONCURRENT_SCANNER_GROUPS=1 and two deployments: the second waits on the quota gate, then gets a slot.",
        scenario((WEB, ["nginx:1.27"]), (API, ["redis:7"])),
        quota_wait,
        files=("quota_wait_granted",),
        settings={"MAX_CONCURRENT_SCANNER_GROUPS": "1"},
        cuts={"quota_wait_granted": {"waiting_for_quota": WAITING_FOR_QUOTA}},
    ),
    Case(
        "quota_wait_expired",
        "MAX_CONCURRENT_SCANNER_GROUPS=1 and the slot's holder scans a hanging image for SCAN_TIMEOUT=3600: the "
        "second deployment asks the gate for 1800 s, then its image fails without a scanner group.",
        scenario((WEB, ["nginx:1.27"]), (API, ["redis:7"]), scans={NGINX: {"result": "hang"}}),
        quota_wait_expired,
        settings={"MAX_CONCURRENT_SCANNER_GROUPS": "1", "SCAN_TIMEOUT": "3600"},
    ),
    Case(
        "aci_quota_refusal",
        "ACI refuses the create with 409 ContainerGroupQuotaReached 7 times (past one create's retries): the "
        "orchestration waits on a durable timer and creates again, then the scan completes.",
        scenario((WEB, ["nginx:1.27"])),
        one_deployment("aci_quota_refusal"),
        faults=[QUOTA_REFUSALS],
        cuts={"aci_quota_refusal": {"waiting_for_quota": WAITING_FOR_QUOTA}},
    ),
    Case(
        "scan_failure",
        "The scanner exits 9 for nginx: the image fails with its exit code and the group is deleted.",
        scenario((WEB, ["nginx:1.27"]), scans={NGINX: {"result": "error", "exit_code": 9, "duration_s": 30}}),
        one_deployment("scan_failure"),
    ),
    Case(
        "delete_failure",
        "ARM answers 500 to every DELETE of the scanner group: the delete fails after its retries, the run records it.",
        scenario((WEB, ["nginx:1.27"])),
        one_deployment("delete_failure"),
        faults=[{"method": "DELETE", "path": r"/containerGroups/qscan-", "status": 500, "times": None}],
        cuts={"delete_failure": {"delete_retry_pending": DELETE_RETRY_PENDING}},
    ),
    Case(
        "create_failure",
        "ARM answers 500 to every GET of the scanner group from the start: the create (which reads the group back) "
        "fails after its retries, the run fails and still stores, notifies and deletes.",
        scenario((WEB, ["nginx:1.27"])),
        one_deployment("create_failure"),
        faults=[{"method": "GET", "path": GROUP_GET, "status": 500, "times": None}],
    ),
    Case(
        "poll_failure",
        "Once the scanner group is created, ARM answers 500 to every GET of it: get_scanner_state fails after its "
        "retries, the run fails and still stores, notifies and deletes.",
        scenario((WEB, ["nginx:1.27"])),
        poll_failure,
    ),
    Case(
        "invalid_input",
        "An input that is not a ScanInput: the orchestration completes at once with status failed and the reason.",
        scenario((WEB, ["nginx:1.27"])),
        invalid_input,
    ),
)
