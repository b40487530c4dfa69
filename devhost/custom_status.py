"""Azure's limit on an orchestration's custom status: at most 16 KB of UTF-16 JSON text, else the instance fails.

Source: Durable Functions docs, "Custom orchestration status" ("The custom status payload is limited to 16 KB of
UTF-16 JSON text"). How the extension applies it (Azure/azure-functions-durable-extension, out-of-process shim):
before it schedules anything from a worker's answer it calls `SetCustomStatus(execution.CustomStatus)` (only when
the value is not null), which serializes the value with Newtonsoft.Json (`JToken.ToString(Formatting.None)`) and
throws `ArgumentException("The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. The current payload
size is N KB.")`; the orchestration fails with that message and none of the episode's actions are scheduled. The
extension compares whole KB (`(int)(bytes / 1024.0) > 16`, so it lets up to 17 KB - 1 byte through); devhost
applies the documented 16 KB (16,384 bytes) exactly, never more leniently than Azure.
"""

from __future__ import annotations

import json
from typing import Any

CUSTOM_STATUS_LIMIT_BYTES = 16 * 1024
_NEWTONSOFT_EXTRA_ESCAPES = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
"""Non-ASCII characters Newtonsoft.Json escapes by default (StringEscapeHandling.Default); the rest it writes as is."""


def utf16_json_bytes(value: Any) -> int:
    """The size in bytes of `value` as the extension stores it: compact JSON as Newtonsoft writes it, in UTF-16."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _NEWTONSOFT_EXTRA_ESCAPES.items():
        text = text.replace(char, escaped)
    return len(text.encode("utf-16-le", errors="surrogatepass"))


def custom_status_error(value: Any) -> str | None:
    """Why Azure would fail an orchestration that sets this custom status, or None when it fits."""
    if value is None:
        return None
    size = utf16_json_bytes(value)
    if size <= CUSTOM_STATUS_LIMIT_BYTES:
        return None
    return (
        "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. The current payload size is "
        f"{size / 1024:.1f} KB. (devhost: the custom status set by the orchestrator is {size:,} bytes of UTF-16 JSON "
        f"text, over Azure's limit of {CUSTOM_STATUS_LIMIT_BYTES:,}; Azure fails the orchestration the same way.)"
    )
