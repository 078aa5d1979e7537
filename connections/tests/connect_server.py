"""A local HTTP server standing in for IFTTT's Connect API, answering as IFTTT documents it.

It records every request, checks the service key and `user_id` as IFTTT does, and can be told to
answer the next matching requests differently (errors, 5xx, slow answers) to exercise the client.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Scripted:
    method: str
    pattern: str
    status: int
    body: Any = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def error(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "details": details or []}


@dataclass
class ConnectState:
    service_key: str
    connection_id: str = "conn-1"
    enabled_users: set[str] = field(default_factory=set)
    # Query id -> every row it has; pages of `page_size` rows unless `limit` asks for fewer.
    query_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    cursor_shape: str = "next"  # "next" (the docs' example) or "top" (the docs' attribute table)
    # Dropdown fields and their valid values: anything else is IFTTT's 422.
    dropdowns: dict[str, list[str]] = field(default_factory=lambda: {"channel": ["general", "random"]})
    requests: list[Recorded] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(
        self,
        method: str,
        pattern: str,
        status: int,
        body: Any = None,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request matching `method` and the `pattern` regex with this, once."""
        with self.lock:
            self.scripted.append(Scripted(method, pattern, status, body, delay_s, dict(headers or {})))

    def calls(self, method: str | None = None, contains: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _handle(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._reply(400, error("bad_request", "The body is not valid JSON"))
            return
        record = Recorded(self.command, parts.path, query, {k: v for k, v in self.headers.items()}, body)
        with state.lock:
            state.requests.append(record)
            scripted = next(
                (s for s in state.scripted if s.method == self.command and re.search(s.pattern, parts.path)), None
            )
            if scripted is not None:
                state.scripted.remove(scripted)
        if scripted is not None:
            time.sleep(scripted.delay_s)
            with contextlib.suppress(OSError):  # the client may have given up waiting
                self._reply(scripted.status, scripted.body, scripted.headers)
            return
        status, answer = self._ifttt(state, record)
        self._reply(status, answer)

    def _ifttt(self, state: ConnectState, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("IFTTT-Service-Key") != state.service_key:
            return 401, error("unauthorized", "Invalid service key")
        path, body = request.path, request.body if isinstance(request.body, dict) else {}
        if path == "/v2/me":
            me = {"type": "me", "authentication_level": "channel", "service_id": "smarthome", "user_login": None}
            if request.query.get("user_id"):
                me.update(authentication_level="user", user_login=request.query["user_id"])
            return 200, me
        if path == "/v2/provisional_access_code" and request.method == "POST":
            if not body.get("oauth_code"):
                return 422, error(
                    "invalid_parameters",
                    "The parameters of your request were invalid",
                    [{"parameter": "/oauth_code", "message": "is required"}],
                )
            return 201, {"provisional_access_code": f"pac-{body['oauth_code']}"}
        match = re.fullmatch(r"/v2/connections/([^/]+)(/.*)?", path)
        if not match:
            return 404, error("not_found", "Not found")
        connection_id, rest = match.group(1), match.group(2) or ""
        if connection_id != state.connection_id:
            return 404, error("not_found", "Unknown connection id")
        in_query = request.method in ("GET", "PUT") or rest.endswith("/refresh")
        user_id = request.query.get("user_id") if in_query else body.get("user_id")
        if rest == "" and request.method == "GET":
            details = {"type": "connection", "id": connection_id, "name": "Lights when liked"}
            if user_id:
                status = "enabled" if user_id in state.enabled_users else "never_enabled"
                details["user_status"] = status
                details["user_connection"] = {"user_features": [{"id": "uf-1", "feature_id": "f-1", "enabled": True}]}
            return 200, details
        if not user_id:
            return 400, error("bad_request", "user_id is required")
        if user_id not in state.enabled_users:
            return 403, error("forbidden", "The user has not enabled this connection")
        if rest == "/user_connection" and request.method == "PUT":
            if not isinstance(body.get("user_features"), list):
                return 422, error(
                    "invalid_parameters",
                    "The parameters of your request were invalid",
                    [{"parameter": "/user_features", "message": "is required"}],
                )
            return 200, {"type": "user_connection", "user_features": body["user_features"]}
        if rest == "/user_connection/refresh" and request.method == "POST":
            return 204, None
        options = re.fullmatch(r"/(triggers|queries|actions|features)/([^/]+)/field_options", rest)
        if options and request.method == "GET":
            return 200, {
                "type": "field_options",
                "options": {"channel": [{"label": v.title(), "value": v} for v in state.dropdowns["channel"]]},
            }
        action = re.fullmatch(r"/actions/([^/]+)/run", rest)
        if action and request.method == "POST":
            for name, value in (body.get("fields") or {}).items():
                if name in state.dropdowns and value not in state.dropdowns[name]:
                    return 422, error(
                        "invalid_parameters",
                        "The parameters of your request were invalid",
                        [{"parameter": f"/fields/{name}", "message": "Not a valid option for this field."}],
                    )
            return 204, None
        query = re.fullmatch(r"/queries/([^/]+)/perform", rest)
        if query and request.method == "POST":
            rows = state.query_rows.get(query.group(1))
            if rows is None:
                return 404, error("not_found", "Unknown query id")
            start = int(body.get("cursor") or 0)
            size = state.page_size
            if isinstance(body.get("limit"), int):
                size = min(size, body["limit"])
            page = rows[start : start + size]
            answer: dict[str, Any] = {"type": "list", "data": page}
            if start + size < len(rows) and size > 0:
                cursor = str(start + size)
                if state.cursor_shape == "next":
                    answer["next"] = {"fields": body.get("fields") or {}, "cursor": cursor}
                else:
                    answer["cursor"] = cursor
            return 200, answer
        return 404, error("not_found", "Not found")

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ConnectState


@contextmanager
def connect_api_server(service_key: str) -> Iterator[tuple[str, ConnectState]]:
    """Start the stand-in on a port the operating system picks; yields its base URL and its state."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ConnectState(service_key=service_key)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
