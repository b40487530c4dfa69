"""A real HTTP server on a free loopback port for the test receivers (webhook, fake registry, download server)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from core.network_policy import NetworkPolicy

HandlerFactory = type[BaseHTTPRequestHandler] | Callable[..., Any]


@contextmanager
def loopback_http_server(handler: HandlerFactory) -> Iterator[str]:
    """Serve `handler` from a thread until the block ends; yields the base URL `http://127.0.0.1:<port>`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def allowing(*urls: str) -> NetworkPolicy:
    """The network policy that lets registry requests reach these loopback servers, named as ALLOWED_PRIVATE_REGISTRIES
    would name them (`127.0.0.1:<port>`); everything else private stays refused."""
    return NetworkPolicy.allowing(urlsplit(url).netloc for url in urls)
