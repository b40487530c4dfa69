"""The inventory API's query validation and tokens, and the demo's sweeps_at_s."""

from __future__ import annotations

import pytest

from core.inventory_views import BadQuery, encode_token, parse_query, parse_resource_param
from devhost.demo_scenario import ScenarioError, parse_scenario

SUB = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
RID = f"/subscriptions/{SUB}/resourceGroups/apps/providers/Microsoft.App/jobs/etl"


def test_a_valid_query_and_its_token_round_trip() -> None:
    query = parse_query(
        {
            "subscription": SUB.upper(),
            "resourceGroup": "Apps",
            "kind": "ACA-JOB",
            "minSeverity": "high",
            "pageSize": "10",
            "continuationToken": encode_token(SUB, "w-abc"),
        }
    )
    assert (query.subscription, query.resource_group, query.kind, query.min_severity) == (
        SUB,
        "Apps",
        "aca-job",
        "HIGH",
    )
    assert query.page_size == 10 and query.after == (SUB, "w-abc")
    assert parse_query({}).page_size == 50


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": "0"},
        {"pageSize": "101"},
        {"pageSize": "1e3"},
        {"kind": "vm"},
        {"minSeverity": "INFO"},
        {"subscription": "x"},
        {"continuationToken": "!!"},
        {"continuationToken": "a" * 600},
        {"kind": " "},
        {"other": "1"},
        {"resourceGroup": "a/b"},
    ],
)
def test_bad_queries_are_refused_with_a_reason(params: dict[str, str]) -> None:
    with pytest.raises(BadQuery):
        parse_query(params)


def test_resource_ids_in_the_path_encoded_or_not() -> None:
    assert parse_resource_param(RID.replace("/", "%2F")).resource_id == RID
    assert parse_resource_param(RID.lstrip("/")).resource_id == RID
    with pytest.raises(BadQuery):
        parse_resource_param("subscriptions/x")


def test_sweeps_at_s_are_validated_and_sorted() -> None:
    assert parse_scenario({"sweeps_at_s": [90, 0]}).sweeps_at_s == (0.0, 90.0)
    for bad in ([-1], ["10"], [True], 5, [10_000_000]):
        with pytest.raises(ScenarioError, match="sweeps_at_s"):
            parse_scenario({"sweeps_at_s": bad})


def test_inventory_updates_have_deterministic_ids_and_bounded_size() -> None:
    from datetime import UTC, datetime

    from activities.inventory_events import InventoryBatch, update_instance_id
    from core.events import DeploymentEvent, ParseResult, parse_resource_id
    from core.settings import load_settings

    settings = load_settings(
        {
            "QUALYS_POD": "US2",
            "QUALYS_ACCESS_TOKEN": "t",
            "AZURE_SUBSCRIPTION_ID": SUB,
            "SCANNER_RESOURCE_GROUP": "rg-s",
            "SCANNER_LOCATION": "westeurope",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )
    now = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
    events = [
        DeploymentEvent.from_parts(
            parse_resource_id(f"/subscriptions/{SUB}/resourceGroups/a/providers/Microsoft.App/jobs/j{i:03d}"),
            f"c{i}",
            now,
        )
        for i in range(150)
    ]

    def batch(order: list[DeploymentEvent]) -> list[str]:
        filled = InventoryBatch(settings, now=now)
        filled.add(ParseResult(targets=order[:120], deletes=order[120:]))
        return [update_instance_id(u) for u in filled.updates()]

    first = batch(events)
    assert len(first) == 2 and all(i.startswith("inv-") for i in first)
    assert batch(events) == first  # a redelivered batch: the same instances


def test_inventory_batches_skip_unmonitored_subscriptions() -> None:
    from datetime import UTC, datetime

    from activities.inventory_events import InventoryBatch
    from core.events import DeploymentEvent, ParseResult, parse_resource_id
    from core.settings import load_settings

    other = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
    settings = load_settings(
        {
            "QUALYS_POD": "US2",
            "QUALYS_ACCESS_TOKEN": "t",
            "AZURE_SUBSCRIPTION_ID": SUB,
            "SCANNER_RESOURCE_GROUP": "rg-s",
            "SCANNER_LOCATION": "westeurope",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )
    now = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)

    def event(subscription: str, name: str) -> DeploymentEvent:
        rid = f"/subscriptions/{subscription}/resourceGroups/a/providers/Microsoft.App/jobs/{name}"
        return DeploymentEvent.from_parts(parse_resource_id(rid), name, now)

    filled = InventoryBatch(settings, now=now)
    filled.add(ParseResult(targets=[event(SUB, "mine"), event(other, "theirs")], deletes=[event(other, "gone")]))
    assert [w.name for w in filled.writes.values()] == ["mine"] and filled.deletes == []


def test_excluded_workloads_and_images_stay_listed_and_are_marked() -> None:
    from datetime import UTC, datetime

    from core.exclusions import parse_exclusions
    from core.inventory_views import workload_view
    from core.workloads import Workload, WorkloadImage

    now = datetime(2026, 12, 6, tzinfo=UTC)
    rid = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/legacy-apps"
        "/providers/Microsoft.ContainerInstance/containerGroups/old"
    )
    workload = Workload(
        resource_id=rid,
        kind="aci",
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group="legacy-apps",
        name="old",
        images=(
            WorkloadImage(image="docker.io/library/busybox:1.36", container="a"),
            WorkloadImage(image="docker.io/library/nginx:1.27", container="b"),
        ),
        first_seen=now,
        last_seen=now,
        recorded_at=now,
    )
    rules = parse_exclusions(["rg:legacy-*", "image:*busybox*"])
    view = workload_view(workload, lambda image: ("k", None), rules)
    assert view["excluded"] == "excluded by SCAN_EXCLUDE rg:legacy-*"
    assert [i["excluded"] for i in view["images"]] == ["excluded by SCAN_EXCLUDE image:*busybox*", None]
    plain = workload_view(workload, lambda image: ("k", None))
    assert plain["excluded"] is None and all(i["excluded"] is None for i in plain["images"])
