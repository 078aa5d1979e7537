"""A Celery worker's own health and metrics, on WORKER_HEALTH_PORT (off unless set).

`/healthz` answers while the worker process runs; `/readyz` answers 200 only while the worker reaches
its broker (a worker that cannot is not ready: it takes no work); `/metrics` serves its counters.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from .metrics import exposition

_server: ThreadingHTTPServer | None = None


def _broker_ready(app: Any, timeout: float) -> tuple[bool, str]:
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True, "reachable"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]


def _handler(app: Any, timeout: float) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, {"status": "ok"})
            elif self.path == "/readyz":
                ok, detail = _broker_ready(app, timeout)
                body = {"status": "ok" if ok else "unavailable", "failed": [] if ok else ["broker"], "broker": detail}
                self._send(200 if ok else 503, body)
            elif self.path == "/metrics":
                payload = exposition()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status == 503:
                self.send_header("Retry-After", "10")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not worth a line
            pass

    return Health


@worker_ready.connect(dispatch_uid="worker_health_start")
def _start(sender: Any = None, **_: Any) -> None:
    global _server
    port = os.environ.get("WORKER_HEALTH_PORT", "")
    if not port or sender is None:
        return
    from django.conf import settings

    app = sender.app
    _server = ThreadingHTTPServer(
        (os.environ.get("WORKER_HEALTH_HOST", "127.0.0.1"), int(port)), _handler(app, settings.HEALTH_TIMEOUT_SECONDS)
    )
    threading.Thread(target=_server.serve_forever, name="worker-health", daemon=True).start()


@worker_shutdown.connect(dispatch_uid="worker_health_stop")
def _stop(**_: Any) -> None:
    if _server is not None:
        _server.shutdown()
