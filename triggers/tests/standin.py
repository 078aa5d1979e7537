"""A local HTTP server standing in for IFTTT's Realtime API: it records every request it receives.

It answers from a script (status codes, optional headers and a hold before answering), then 200.
Ports come from REALTIME_TEST_PORTS (default 8360-8399) so parallel runs never collide.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0


@dataclass
class Received:
    at: float
    request_id: str
    service_key: str
    identities: list[str]
    status: int
    body: Any


class StandIn:
    def __init__(self, script: list[Reply] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[Received] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.failing_until = 0.0

    def outage(self, seconds: float) -> None:
        """Answer every request 500 for the next `seconds`."""
        self.failing_until = time.monotonic() + seconds

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/notifications"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw)
            identities = [entry["trigger_identity"] for entry in body["data"]]
        except (ValueError, KeyError, TypeError):
            body, identities = raw.decode(errors="replace"), []
        with self._lock:
            if time.monotonic() < self.failing_until:
                reply = Reply(500)
            else:
                reply = self.script.pop(0) if self.script else Reply()
        self.arrived.set()
        if reply.hold_seconds:
            time.sleep(reply.hold_seconds)
        with self._lock:
            self.received.append(
                Received(
                    at=time.time(),
                    request_id=handler.headers.get("X-Request-ID", ""),
                    service_key=handler.headers.get("IFTTT-Service-Key", ""),
                    identities=identities,
                    status=reply.status,
                    body=body,
                )
            )
        payload = b"{}"
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def start(self) -> StandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        low, _, high = os.environ.get("REALTIME_TEST_PORTS", "8360-8399").partition("-")
        for port in range(int(low), int(high) + 1):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            raise RuntimeError(f"No free port in {low}-{high} for the Realtime stand-in.")
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- What the tests ask --------------------------------------------------------------------

    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def notified(self) -> dict[str, set[str]]:
        """Identity → the distinct X-Request-IDs that carried it and were answered 2xx."""
        result: dict[str, set[str]] = {}
        for request in self.delivered():
            for identity in request.identities:
                result.setdefault(identity, set()).add(request.request_id)
        return result

    def wait_for(self, identities: set[str], *, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not identities <= set(self.notified()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


@contextmanager
def standin(script: list[Reply] | None = None) -> Iterator[StandIn]:
    server = StandIn(script).start()
    try:
        yield server
    finally:
        server.stop()


def broker_connections_reset() -> None:
    """Forget pooled broker connections, after a test points Celery at another broker."""
    from iftttsvc.celery import app

    app._after_fork()  # type: ignore[attr-defined]  # Celery's own reset, as after a fork
