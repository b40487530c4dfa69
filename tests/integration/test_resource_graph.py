"""Resource Graph through the real azure-mgmt-resourcegraph client over HTTPS to the simulator: paging, throttling,
strict query parsing, deleted workloads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.resource_graph import query_page, resource_graph
from core.sweep import PAGE_SIZE, SWEEP_QUERY
from devhost.armsim import ArmSimulator
from devhost.armsim.scenario import Scenario
from devhost.armsim.testing import SUBSCRIPTION_ID, resource_id, settings_for
from devhost.clock import VirtualClock

OTHER_SUB = "11111111-2222-4333-8444-555555555555"
KINDS = ("Microsoft.ContainerInstance/containerGroups", "Microsoft.App/containerApps", "Microsoft.App/jobs")
SCENARIO = Scenario.model_validate(
    {
        "settings": {"ARMSIM_RESOURCE_GRAPH_QUOTA": "15"},
        "resources": [
            {"id": resource_id(KINDS[i % 3], f"w{i:05d}"), "images": [f"nginx:1.{i % 7}"], "init_images": ["busybox:1"]}
            for i in range(2345)
        ]
        + [
            {
                "id": f"/subscriptions/{OTHER_SUB}/resourceGroups/x/providers/Microsoft.App/jobs/elsewhere",
                "images": ["a:1"],
            },
            {"id": resource_id(KINDS[0], "gone-soon"), "images": ["redis:7"], "deleted_at_s": 60},
        ],
    }
)


def test_pages_of_1000_with_skip_tokens_cover_every_workload_once(sim: ArmSimulator) -> None:
    settings = settings_for(sim)
    seen: list[str] = []
    rows = []
    token = None
    pages = 0
    while True:
        page = query_page(settings, [SUBSCRIPTION_ID], token)
        assert not page.throttled and page.skipped == 0
        assert len(page.rows) <= PAGE_SIZE
        assert page.quota_remaining == 15 - pages - 1
        assert page.resets_after_s is not None and 0 <= page.resets_after_s <= 5
        seen += [row.resource_id for row in page.rows]
        rows += page.rows
        pages += 1
        token = page.skip_token
        if token is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 2346  # the other subscription's job is not asked for
    first = next(r for r in rows if r.resource_id.endswith("w00000"))
    assert [(i.image, i.init) for i in first.images] == [
        ("docker.io/library/nginx:1.0", False),
        ("docker.io/library/busybox:1", True),
    ]
    assert first.location == "westeurope"


def test_the_sixteenth_query_in_five_seconds_is_throttled_until_the_window_resets(
    sim: ArmSimulator, clock: VirtualClock
) -> None:
    settings = settings_for(sim)
    answers = [query_page(settings, [SUBSCRIPTION_ID], None) for _ in range(16)]
    assert [a.throttled for a in answers] == [False] * 15 + [True]
    assert answers[14].quota_remaining == 0
    assert answers[15].resets_after_s == 5
    clock.advance(timedelta(seconds=5))
    again = query_page(settings, [SUBSCRIPTION_ID], None)
    assert not again.throttled and again.quota_remaining == 14
    assert sim.stats()["resource_graph"] == {"queries": 16, "throttled": 1}


def test_a_deleted_workload_vanishes_from_queries_and_get(sim: ArmSimulator, clock: VirtualClock) -> None:
    settings = settings_for(sim)

    def ids() -> set[str]:
        found: set[str] = set()
        token = None
        while True:
            page = query_page(settings, [SUBSCRIPTION_ID], token)
            found |= {r.resource_id.rsplit("/", 1)[-1] for r in page.rows}
            token = page.skip_token
            if token is None:
                return found

    assert "gone-soon" in ids()
    clock.advance(timedelta(seconds=61))
    assert "gone-soon" not in ids()


@pytest.mark.parametrize(
    "query",
    [
        "resources | project id",
        "resources | where type in~ ('microsoft.storage/storageaccounts') | project id | order by id asc",
        SWEEP_QUERY.replace("order by id asc", "order by name asc"),
        SWEEP_QUERY + " | limit 5",
        SWEEP_QUERY.replace("properties", "properties, secrets"),
    ],
)
def test_queries_of_another_shape_are_refused_with_400(sim: ArmSimulator, query: str) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resourcegraph.models import QueryRequest

    client = resource_graph(settings_for(sim))
    with pytest.raises(HttpResponseError) as raised:
        client.resources(QueryRequest(subscriptions=[SUBSCRIPTION_ID], query=query))
    assert raised.value.status_code == 400
    assert raised.value.error is not None and raised.value.error.code == "InvalidQuery"


def test_bad_skip_token_top_and_unknown_api_version_are_refused(sim: ArmSimulator) -> None:
    token = sim.state.handle(
        "GET",
        "/msi/token",
        {"api-version": "2019-08-01", "resource": "x"},
        {"x-identity-header": sim.state.identity_header},
        b"",
    ).body
    assert isinstance(token, dict)
    auth = {"authorization": f"Bearer {token['access_token']}"}
    path = "/providers/Microsoft.ResourceGraph/resources"
    body = {"subscriptions": [SUBSCRIPTION_ID], "query": SWEEP_QUERY}
    import json

    def post(version: str, options: dict[str, object]) -> int:
        answer = sim.state.handle(
            "POST", path, {"api-version": version}, auth, json.dumps({**body, "options": options}).encode()
        )
        return answer.status

    assert post("2021-03-01", {"$skipToken": "not-a-token"}) == 400
    assert post("2021-03-01", {"$top": 1001}) == 400
    assert post("2019-04-01", {}) == 400
    assert post("2022-10-01", {"$top": 5, "$skip": 2}) == 200
