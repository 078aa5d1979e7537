"""This service, served from a thread of the current process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, WSGIServer
from django.db import connections


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def service_in_thread(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the project on http://host:port (0: any free port) until the block ends; yields the base URL.

    An in-memory SQLite database (the test suite's) lives on the one connection that made it, so the
    server then uses that connection and answers one request at a time; otherwise it is threaded.
    """
    shared: dict[str, Any] = {}
    for conn in connections.all():
        if conn.vendor == "sqlite" and conn.is_in_memory_db():  # type: ignore[attr-defined]
            conn.inc_thread_sharing()
            shared[conn.alias] = conn
    if host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
    server: WSGIServer
    if shared:
        server = WSGIServer((host, port), _QuietHandler, allow_reuse_address=False)
    else:
        server = ThreadedWSGIServer((host, port), _QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())

    def serve() -> None:
        for alias, conn in shared.items():
            connections[alias] = conn
        server.serve_forever(poll_interval=0.1)

    thread = threading.Thread(target=serve, name="localifttt-service", daemon=True)
    thread.start()
    # The checks provoke hundreds of deliberate 4xx answers; Django would log each as a warning.
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        request_log.setLevel(level)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        for conn in shared.values():
            conn.dec_thread_sharing()
