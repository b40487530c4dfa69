"""Reads for the export API: an image key's latest stored result, and one of its kept files from the reports container.

Not an activity (the HTTP functions call it in a worker thread). Blob reads are bounded (`read_blob`: at most the
format's `max_bytes` + 1 bytes, downloaded in the SDK's chunks): the Functions Python HTTP response is one bytes body,
so the export is held in memory once, never more than the bound (docs/results.md, "Exports").
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.results_store import CACHE_ROW, LATEST_RESULT_ROW, _get_entity, _result_of
from activities.storage_clients import BlobTooLarge, StorageClients, read_blob
from core.exports import ExportFormat, InvalidExport, check_export
from core.naming import image_key
from core.report import ImageResult
from core.settings import Settings


class NothingStored(LookupError):
    """No stored result for the key, or the result has no such file (404)."""


@dataclass(frozen=True, slots=True)
class Export:
    """The bytes to serve, and the result they belong to."""

    data: bytes
    result: ImageResult
    folder: str


def latest_result_for_key(clients: StorageClients, settings: Settings, key: str) -> ImageResult | None:
    """The latest result stored under an image key: `last_result` (keyed by canonical reference), else the cache
    entry (keyed by digest, the key in a result's report URL); None when neither exists.
    """
    table = clients.table(settings.cache_table)
    for row in (LATEST_RESULT_ROW, CACHE_ROW):
        entity = _get_entity(table, key, row)
        result = _result_of(entity) if entity else None
        if result is not None:
            return result
    return None


def read_export(clients: StorageClients, settings: Settings, key: str, fmt: ExportFormat) -> Export:
    """The stored file of the key's latest result in format `fmt`, checked (`core.exports.check_export`).

    NothingStored (404) when there is no result, no instance id or no such file; InvalidExport (502) when the stored
    file is larger than the bound, not JSON, or (SARIF) not valid SARIF 2.1.0.
    """
    result = latest_result_for_key(clients, settings, key)
    if result is None:
        raise NothingStored("no stored result for this key")
    if not result.instance_id:
        raise NothingStored("the latest result has no stored files")
    folder = f"{image_key(result.image, result.digest)}/{result.instance_id}"
    try:
        data = read_blob(clients.container(settings.results_container), f"{folder}/{fmt.blob}", fmt.max_bytes)
    except BlobTooLarge:
        raise InvalidExport(f"the stored {fmt.blob} is larger than {fmt.max_bytes} bytes") from None
    if data is None:
        raise NothingStored(f"the latest result ({result.status}) has no stored {fmt.blob}")
    check_export(fmt, data)
    return Export(data, result, folder)
