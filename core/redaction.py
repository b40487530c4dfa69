"""Blanking secrets out of text that may reach logs, durable history, scan records or alerts."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

REDACTED = "REDACTED"
MIN_REDACTED_CHARS = 4  # shorter "secrets" would blank ordinary text
_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with `secrets` and SAS signatures blanked (a log or error must never carry a usable credential)."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_REDACTED_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SAS_SIGNATURE.sub(rf"\1{REDACTED}", text)


def secret_values(model: BaseModel) -> list[str]:
    """Every `SecretStr` value in `model` and its nested models, plus the query part of secret URLs (SAS, tokens)."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            found += [text, text.partition("?")[2]] if "?" in text else [text]
        elif isinstance(value, BaseModel):
            found += secret_values(value)
    return [text for text in found if text]
