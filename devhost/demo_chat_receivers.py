"""The demo's Microsoft Teams and Slack receivers on loopback: strict about shapes and sizes, like the services.

- Teams (Workflows webhook): `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version": "1.4"+, "body": [...]}}]}`,
  at most 28 KB ("The message size limit is 28 KB",
  https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook;
  "approximately 28 KB", https://learn.microsoft.com/en-us/connectors/teams/); here 28,000 bytes, the stricter reading.
  A Workflows trigger answers 202 Accepted; too large: 413.
- Slack (incoming webhook, https://api.slack.com/messaging/webhooks and
  https://api.slack.com/reference/block-kit/blocks): `text` and/or `blocks`; at most 50 blocks; a section's text at
  most 3000 characters and at most 10 fields of 2000; a header's plain_text at most 150; a context at most 10
  elements. Slack answers 200 `ok`, or 400 with `invalid_blocks` / `no_text` / `invalid_payload`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devhost.demo_receivers import LOOPBACK, ServedReceiver, _Sink

TEAMS_PATH = "/workflows/qscanner/triggers/manual/paths/invoke"
SLACK_PATH = "/services/T0DEMO/B0DEMO/demo-token"
TEAMS_MAX_BYTES = 28_000
SLACK_MAX_BYTES = 1024 * 1024
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MIN_CARD_VERSION = (1, 4)
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_FIELD_CHARS = 2000
SLACK_MAX_FIELDS = 10
SLACK_HEADER_CHARS = 150
SLACK_MAX_CONTEXT_ELEMENTS = 10
SLACK_BLOCK_TYPES = frozenset({"section", "header", "divider", "context", "actions", "image", "rich_text"})


class Refused(ValueError):
    """The payload breaks a rule of the service: (status, body) of the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_teams(body: bytes) -> None:
    """Raise `Refused` unless `body` is a Workflows webhook message with one Adaptive Card 1.4+ within 28 KB."""
    if len(body) > TEAMS_MAX_BYTES:
        raise Refused(413, "RequestEntityTooLarge")
    document = _json(body)
    attachments = document.get("type") == "message" and document.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        raise Refused(400, "expected type message with one attachment")
    attachment = attachments[0]
    card = attachment.get("content") if isinstance(attachment, dict) else None
    if attachment.get("contentType") != ADAPTIVE_CARD or not isinstance(card, dict):
        raise Refused(400, "the attachment is not an Adaptive Card")
    try:
        version = tuple(int(part) for part in str(card.get("version")).split("."))
    except ValueError:
        raise Refused(400, "bad AdaptiveCard version") from None
    if card.get("type") != "AdaptiveCard" or version < MIN_CARD_VERSION or not isinstance(card.get("body"), list):
        raise Refused(400, "expected an AdaptiveCard 1.4+ with a body")


def _text_of(block: dict[str, Any], key: str = "text") -> str:
    text = block.get(key)
    return str(text.get("text", "")) if isinstance(text, dict) else ""


def _plain_text(block: dict[str, Any]) -> bool:
    text = block.get("text")
    return isinstance(text, dict) and text.get("type") == "plain_text"


def check_slack(body: bytes) -> None:
    """Raise `Refused` unless `body` is an incoming-webhook message within Block Kit's limits."""
    if len(body) > SLACK_MAX_BYTES:
        raise Refused(400, "invalid_payload")
    document = _json(body)
    blocks = document.get("blocks")
    if not document.get("text") and not blocks:
        raise Refused(400, "no_text")
    if blocks is None:
        return
    if not isinstance(blocks, list) or len(blocks) > SLACK_MAX_BLOCKS:
        raise Refused(400, "invalid_blocks")
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in SLACK_BLOCK_TYPES:
            raise Refused(400, "invalid_blocks")
        assert isinstance(block, dict)
        fields = block.get("fields") or []
        too_long = (
            (kind == "section" and len(_text_of(block)) > SLACK_SECTION_CHARS)
            or (kind == "section" and not _text_of(block) and not fields)
            or len(fields) > SLACK_MAX_FIELDS
            or any(len(str(f.get("text", ""))) > SLACK_FIELD_CHARS for f in fields)
            or (kind == "header" and (len(_text_of(block)) > SLACK_HEADER_CHARS or not _plain_text(block)))
            or (kind == "context" and not 0 < len(block.get("elements") or []) <= SLACK_MAX_CONTEXT_ELEMENTS)
        )
        if too_long:
            raise Refused(400, "invalid_blocks")


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise Refused(400, "invalid_payload") from None
    if not isinstance(document, dict):
        raise Refused(400, "invalid_payload")
    return document


class _Handler(BaseHTTPRequestHandler):
    server: _ChatServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != self.server.path:
            self._answer(404, "not found")
            return
        body = self.rfile.read(length)
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._answer(400, "invalid_payload")
            return
        try:
            self.server.check(body)
        except Refused as refusal:
            self.server.refused += 1
            self._answer(refusal.status, str(refusal))
            return
        self.server.sink.write(json.dumps(json.loads(body), indent=2).encode() + b"\n")
        self._answer(self.server.ok_status, "ok" if self.server.ok_status == 200 else "")


class _ChatServer(ThreadingHTTPServer):
    daemon_threads = True
    sink: _Sink
    path: str
    check: Callable[[bytes], None]
    ok_status: int
    refused: int = 0


class ChatReceiver(ServedReceiver):
    """A loopback HTTP receiver that validates like Teams or Slack and saves each accepted message as .json."""

    def __init__(self, directory: Path, path: str, check: Callable[[bytes], None], ok_status: int, name: str) -> None:
        server = _ChatServer((LOOPBACK, 0), _Handler)
        server.sink = _Sink(directory, ".json")
        server.path = path
        server.check = check
        server.ok_status = ok_status
        super().__init__(server, path, name)

    @property
    def refused(self) -> int:
        return int(self._server.refused)


def teams_receiver(directory: Path) -> ChatReceiver:
    return ChatReceiver(directory, TEAMS_PATH, check_teams, 202, "demo-teams")


def slack_receiver(directory: Path) -> ChatReceiver:
    return ChatReceiver(directory, SLACK_PATH, check_slack, 200, "demo-slack")
