"""Alerts as chat messages within each service's limits: a Teams Adaptive Card and a Slack Block Kit message.

Limits (the devhost receivers enforce the same, devhost/demo_chat_receivers.py):
- Teams (Workflows webhook, "Post card in a chat or channel"): "the message size limit is approximately 28 KB"
  (https://learn.microsoft.com/en-us/connectors/teams/#known-issues-and-limitations-with-actions, and "The message
  size limit is 28 KB" in https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/
  add-incoming-webhook). Body: `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}`.
- Slack (incoming webhook, Block Kit, https://api.slack.com/reference/block-kit/blocks): at most 50 blocks per
  message; a section's text at most 3000 characters; a header's plain_text at most 150; a context block at most 10
  elements. mrkdwn text escapes `&`, `<` and `>` (https://api.slack.com/reference/surfaces/formatting#escaping).

What does not fit is left out, and the message ends with how many images were left out and where the API has them
(`GET /api/scans/<id>` or `GET /api/images?ref=`, on PUBLIC_BASE_URL when set).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.alerts import Alert, diff_summary, image_link, scan_link
from core.report import ImageResult

TEAMS_MAX_BYTES = 28_000
TEAMS_BUDGET_BYTES = 26_000  # a margin under the limit: the Workflows flow wraps the card before posting it
ADAPTIVE_CARD_VERSION = "1.4"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
SLACK_FALLBACK_CHARS = 3000
MAX_FINDINGS_SHOWN = 5
MAX_FIELD_CHARS = 500


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _more_link(alert: Alert, base_url: str | None, left_out: list[ImageResult]) -> tuple[str, str | None]:
    """The note that ends a truncated message, and the link it points to."""
    if alert.is_digest:
        link = image_link(base_url, left_out[0].image)
        where = f"GET /api/images?ref=<image> ({link} for the first)" if link else "GET /api/images?ref=<image>"
    else:
        link = scan_link(base_url, alert.instance_id)
        where = link or f"GET /api/scans/{alert.instance_id}"
    return f"{len(left_out)} more image(s) not shown (message size limit): see {where}", link


def _image_facts(alert: Alert, result: ImageResult) -> list[tuple[str, str]]:
    counts = result.vulnerabilities
    facts = [
        ("Status", result.status),
        ("Findings", f"CRITICAL {counts.CRITICAL}, HIGH {counts.HIGH}, MEDIUM {counts.MEDIUM}, LOW {counts.LOW}"),
    ]
    workloads = alert.workloads.get(result.image, ())
    if workloads:
        facts.append(("Workloads", clip(", ".join(workloads), MAX_FIELD_CHARS)))
    if result.reason:
        facts.append(("Reason", clip(result.reason, MAX_FIELD_CHARS)))
    note = alert.exception_note(result.image)
    if note:
        facts.append(("Excepted", clip(note, MAX_FIELD_CHARS)))
    diff = alert.diffs.get(result.image)
    if diff is not None:
        facts.append(("Change", clip(diff_summary(diff), MAX_FIELD_CHARS)))
        for finding in diff.new[:MAX_FINDINGS_SHOWN]:
            facts.append((f"New QID {finding.qid}", clip(f"{finding.severity.value} {finding.title}", MAX_FIELD_CHARS)))
        for change in diff.changed[:MAX_FINDINGS_SHOWN]:
            was = f" (was {change.previous_severity.value})" if change.previous_severity else ""
            fix = " (fix available)" if change.fix_available else ""
            text = f"{change.severity.value}{was}{fix} {change.title}"
            facts.append((f"Changed QID {change.qid}", clip(text, MAX_FIELD_CHARS)))
        return facts
    for finding in alert.findings.get(result.image, ())[:MAX_FINDINGS_SHOWN]:
        facts.append((f"QID {finding.qid}", clip(f"{finding.severity.value} {finding.title}", MAX_FIELD_CHARS)))
    return facts


def _fit(
    alert: Alert, render: Callable[[list[ImageResult], str | None, str | None], bytes], budget: int, base: str | None
) -> bytes:
    """The largest prefix of the attention list that renders within `budget` bytes (with the truncation note)."""
    shown = list(alert.attention)
    body = render(shown, None, None)
    while len(body) > budget and shown:
        shown.pop()
        note, link = _more_link(alert, base, alert.attention[len(shown) :])
        body = render(shown, note, link)
    return body


def teams_card(alert: Alert, shown: list[ImageResult], note: str | None, link: str | None) -> dict[str, Any]:
    """The Adaptive Card (1.4) of an alert showing `shown`, ending with `note` when images were left out."""
    summary = [("Threshold", alert.threshold.value), ("Images", f"{len(alert.attention)} need attention")]
    if alert.deployment:
        summary.append(("Workload", alert.deployment.workload))
    if alert.is_digest:
        summary.append(("Scans", str(len(alert.scans))))
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": clip(alert.title, MAX_FIELD_CHARS),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in summary]},
    ]
    for result in shown:
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    {
                        "type": "TextBlock",
                        "text": clip(result.image, MAX_FIELD_CHARS),
                        "weight": "Bolder",
                        "wrap": True,
                    },
                    {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _image_facts(alert, result)]},
                ],
            }
        )
    if note:
        body.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in the API", "url": link}]
    return card


def teams_payload(alert: Alert, base_url: str | None = None, budget: int = TEAMS_BUDGET_BYTES) -> bytes:
    """The Workflows webhook body, at most `budget` bytes."""

    def render(shown: list[ImageResult], note: str | None, link: str | None) -> bytes:
        attachment = {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": teams_card(alert, shown, note, link)}
        return json.dumps({"type": "message", "attachments": [attachment]}, separators=(",", ":")).encode()

    return _fit(alert, render, budget, base_url)


def mrkdwn(text: str) -> str:
    """Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_section(alert: Alert, result: ImageResult) -> dict[str, Any]:
    lines = [f"*{mrkdwn(result.image)}*"] + [f"{t}: {mrkdwn(v)}" for t, v in _image_facts(alert, result)]
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip("\n".join(lines), SLACK_SECTION_CHARS)}}


def slack_blocks(alert: Alert, shown: list[ImageResult], note: str | None, link: str | None) -> list[dict[str, Any]]:
    """The Block Kit blocks of an alert showing `shown` (the caller keeps them within SLACK_MAX_BLOCKS)."""
    summary = f"Threshold {alert.threshold.value}; {len(alert.attention)} image(s) need attention"
    if alert.deployment:
        summary += f" in {mrkdwn(alert.deployment.workload)}"
    if alert.is_digest:
        summary += f"; {len(alert.scans)} scan(s) in this digest"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(alert.title, SLACK_HEADER_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(summary, SLACK_SECTION_CHARS)}},
        {"type": "divider"},
    ]
    blocks += [_slack_section(alert, result) for result in shown]
    if note:
        text = mrkdwn(note) if not link else f"{mrkdwn(note)} (<{link}|open>)"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SLACK_SECTION_CHARS)}]})
    return blocks


def slack_payload(alert: Alert, base_url: str | None = None) -> bytes:
    """The incoming-webhook body: `text` (the notification's fallback) and at most SLACK_MAX_BLOCKS blocks."""
    fixed = 4  # header, summary, divider, the truncation note
    room = SLACK_MAX_BLOCKS - fixed
    shown = alert.attention[:room]
    note, link = (None, None)
    if len(shown) < len(alert.attention):
        note, link = _more_link(alert, base_url, alert.attention[len(shown) :])
    document = {"text": clip(alert.title, SLACK_FALLBACK_CHARS), "blocks": slack_blocks(alert, shown, note, link)}
    return json.dumps(document, separators=(",", ":")).encode()
