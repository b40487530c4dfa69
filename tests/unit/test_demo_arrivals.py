"""Scenario messages with arrival times (`at_s`): parsing, validation and what plain messages mean."""

from __future__ import annotations

import pytest

from devhost.demo_scenario import MAX_AT_S, ScenarioError, parse_scenario


def test_at_s_envelopes_carry_their_time_and_plain_messages_none() -> None:
    scenario = parse_scenario(
        {
            "messages": [
                {"records": []},
                {"at_s": 90, "body": {"records": []}, "note": "second wave"},
                {"records": [1]},
                {"at_s": 90, "body": "tie: file order"},
                {"at_s": 300.5, "body": {}},
            ]
        }
    )
    assert [(d.index, d.at_s, d.after_s) for d in scenario.deliveries] == [
        (0, None, None),
        (1, 90.0, None),
        (2, None, None),
        (3, 90.0, None),
        (4, 300.5, None),
    ]
    assert scenario.deliveries[1].note == "second wave"


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"at_s": -1, "body": {}}], r"messages\[0\]: at_s: Input should be greater than or equal to 0"),
        ([{"at_s": MAX_AT_S + 1, "body": {}}], r"messages\[0\]: at_s: Input should be less than or equal to 604800"),
        ([{"at_s": "soon", "body": {}}], r"messages\[0\]: at_s: Input should be a valid number"),
        ([{"at_s": "90", "body": {}}], r"messages\[0\]: at_s: Input should be a valid number"),
        ([{"at_s": True, "body": {}}], r"messages\[0\]: at_s: Input should be a valid number"),
        ([{"at_s": float("nan"), "body": {}}], r"messages\[0\]: at_s: Input should be a finite number"),
        ([{"at_s": 60, "after_s": 60, "body": {}}], "either after_s .* or at_s .*, not both"),
        (
            [{"at_s": 90, "body": {}}, {"records": []}, {"at_s": 30, "body": {}}],
            r"messages\[2\]: at_s 30 is earlier than messages\[0\]'s at_s 90; list timed messages in time order",
        ),
    ],
)
def test_bad_arrival_times_are_refused_with_the_message_named(messages: list[object], reason: str) -> None:
    with pytest.raises(ScenarioError, match=reason):
        parse_scenario({"messages": messages}, "wave.json")


def test_the_error_names_the_file() -> None:
    with pytest.raises(ScenarioError, match=r"^wave.json: messages\[0\]"):
        parse_scenario({"messages": [{"at_s": -5, "body": {}}]}, "wave.json")
