"""IFTTT running one connection against a service: Connect webhooks out, Connect API calls in.

What IFTTT does for a connection whose backend is this service (protocol section 11): it tells the
service the user enabled the connection (`connection/enabled`), then sends `trigger_subscription/fired`
for a trigger event; the service's runtime script (or backend) answers by calling the Connect API
(`runAction`, `performQuery`). Here a local server stands in for the Connect API: it checks the
service key and the user as IFTTT does, runs this service's own actions and queries through its
Service API (as IFTTT would, with the user's access token), and records calls meant for other
services. Every step is printed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .applet import AppletError, AppletRunner
from .client import Recorder
from .endpoints import USER

SOURCE = {"id": "localifttt-connection", "url": "https://ifttt.com/connect/localifttt"}
_PATH = re.compile(r"^/v2/connections/([^/]+)(/.*)?$")


def _error(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "details": details or []}


@dataclass(frozen=True)
class ConnectionSetup:
    """One user's connection, as IFTTT would hold it."""

    connection_id: str
    service_slug: str
    service_key: str
    trigger_id: str  # "<service>.<trigger>"
    feature_id: str = "local-feature"
    user_feature_id: str = "local-user-feature"
    # What the user chose when enabling the connection, by step ("service.slug") then field.
    user_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    timezone: str = "Pacific Time (US & Canada)"


@dataclass
class CallSeen:
    method: str
    path: str
    kind: str  # "action", "query", or the path's last part
    step_id: str
    fields: dict[str, Any]
    status: int
    routed: bool  # run through this service's Service API (rather than recorded)


class ConnectStandIn:
    """IFTTT's Connect API on a local port, for one connection and one user."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        setup: ConnectionSetup,
        user_id: str,
        runner: AppletRunner,
        say: Callable[[str], None],
    ) -> None:
        self.setup = setup
        self.user_id = user_id
        self.runner = runner
        self.say = say
        self.calls: list[CallSeen] = []
        self.last_call_at = 0.0
        self.lock = threading.Lock()
        # IFTTT answers an action run with 204 and runs the action after: so do we, in order.
        self.actions: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self.outcomes: dict[str, int] = {"done": 0, "skipped": 0, "failed": 0, "recorded": 0}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = stand_in.answer(self.command, self.path, dict(self.headers.items()), raw)
                payload = b"" if body is None else json.dumps(body).encode("utf-8")
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @contextmanager
    def running(self) -> Iterator[ConnectStandIn]:
        threads = [
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True),
            threading.Thread(target=self._run_actions, daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.actions.put(None)
            self.server.shutdown()
            self.server.server_close()
            for thread in threads:
                thread.join(timeout=10)

    @property
    def busy(self) -> bool:
        return self.actions.unfinished_tasks > 0

    # --- answering as IFTTT's Connect API --------------------------------------------------------
    def answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        key = headers.get("IFTTT-Service-Key") or headers.get("Ifttt-Service-Key") or ""
        if not hmac.compare_digest(key.encode(), self.setup.service_key.encode()):
            self.say(f"Connect API: refused {method} {path}: wrong or missing IFTTT-Service-Key (401).")
            return 401, _error("unauthorized", "Invalid service key")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return 400, _error("bad_request", "The body is not valid JSON")
        body = body if isinstance(body, dict) else {}
        if path == "/v2/me":
            return 200, {"type": "me", "authentication_level": "channel", "service_id": self.setup.service_slug}
        match = _PATH.match(path)
        if match is None:
            return 404, _error("not_found", "Not found")
        if match.group(1) != self.setup.connection_id:
            self.say(f"Connect API: {method} {path}: unknown connection id (404).")
            return 404, _error("not_found", "Unknown connection id")
        rest = match.group(2) or ""
        user_id = str(body.get("user_id") or query.get("user_id") or "")
        if rest == "" and method == "GET":
            return 200, self._details(user_id)
        if not user_id:
            return 400, _error("bad_request", "user_id is required")
        if user_id != self.user_id:
            self.say(f"Connect API: {method} {path} for user {user_id}, who has not enabled this connection (403).")
            return 403, _error("forbidden", "The user has not enabled this connection")
        raw_fields = body.get("fields")
        fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
        step = re.fullmatch(r"/(actions|queries)/([^/]+)/(run|perform)", rest)
        if step is None or method != "POST":
            self._seen(CallSeen(method, path, rest.rsplit("/", 1)[-1], "", fields, 204, False))
            self.say(f"Connect API: {method} {path} (recorded; answered 204).")
            return 204, None
        kind = "action" if step.group(1) == "actions" else "query"
        step_id = step.group(2)
        service, _, slug = step_id.partition(".")
        merged = {**self.setup.user_fields.get(step_id, {}), **{k: _text(v) for k, v in fields.items()}}
        own = service == self.setup.service_slug
        if kind == "action":
            self._seen(CallSeen(method, path, kind, step_id, merged, 204, own))
            if own:
                self.say(
                    f"Connect API: runAction {step_id} {json.dumps(merged, ensure_ascii=False)} → 204; running it…"
                )
                self.actions.put((slug, merged))
            else:
                self.outcomes["recorded"] += 1
                self.say(
                    f"Connect API: runAction {step_id} {json.dumps(fields, ensure_ascii=False)} → 204 "
                    "(another service's; recorded)"
                )
            return 204, None
        if not own:
            self._seen(CallSeen(method, path, kind, step_id, merged, 200, False))
            self.outcomes["recorded"] += 1
            self.say(f"Connect API: performQuery {step_id} → 200, no rows (another service's; recorded)")
            return 200, {"type": "list", "data": []}
        status, answer = self._query(slug, merged, body)
        self._seen(CallSeen(method, path, kind, step_id, merged, status, True))
        return status, answer

    def _seen(self, call: CallSeen) -> None:
        with self.lock:
            self.calls.append(call)
            self.last_call_at = time.monotonic()

    def _details(self, user_id: str) -> dict[str, Any]:
        details: dict[str, Any] = {"type": "connection", "id": self.setup.connection_id, "name": "Local connection"}
        if user_id:
            details["user_status"] = "enabled" if user_id == self.user_id else "never_enabled"
            details["user_connection"] = {
                "user_features": [
                    {"id": self.setup.user_feature_id, "feature_id": self.setup.feature_id, "enabled": True}
                ]
            }
        return details

    def _query(self, slug: str, fields: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        request: dict[str, Any] = {"queryFields": fields, "user": USER, "ifttt_source": SOURCE}
        if isinstance(body.get("limit"), int):
            request["limit"] = body["limit"]
        if body.get("cursor"):
            request["cursor"] = body["cursor"]
        exchange = self.runner.call("POST", f"/queries/{slug}", request)
        try:
            answer = self.runner.answer(exchange, f"Query {slug}")
        except AppletError as exc:
            self.say(f"Connect API: performQuery {self.setup.service_slug}.{slug} ✗ {exc}")
            return 502, _error("bad_gateway", str(exc))
        rows = answer.get("data") if isinstance(answer, dict) else None
        result: dict[str, Any] = {"type": "list", "data": rows if isinstance(rows, list) else []}
        if isinstance(answer, dict) and answer.get("cursor"):
            result["next"] = {"fields": fields, "cursor": answer["cursor"]}
        self.say(
            f"Connect API: performQuery {self.setup.service_slug}.{slug} {json.dumps(fields, ensure_ascii=False)} → "
            f"{len(result['data'])} row(s) from the service"
        )
        return 200, result

    def _run_actions(self) -> None:
        while True:
            item = self.actions.get()
            try:
                if item is None:
                    return
                self._run_action(*item)
            finally:
                self.actions.task_done()

    def _run_action(self, slug: str, fields: dict[str, str]) -> None:
        exchange = self.runner.call(
            "POST", f"/actions/{slug}", {"actionFields": fields, "user": USER, "ifttt_source": SOURCE}
        )
        body: Any = None
        with contextlib.suppress(ValueError):
            body = exchange.json()
        name = f"{self.setup.service_slug}.{slug}"
        if exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
            record = body["data"][0] if body["data"] and isinstance(body["data"][0], dict) else {}
            self.outcomes["done"] += 1
            self.say(f"  ✓ {name} done: record {record.get('id')} {record.get('url') or ''}".rstrip())
            return
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        if exchange.status == 400 and first.get("status") == "SKIP":
            self.outcomes["skipped"] += 1
            self.say(f"  – {name} skipped by the service: {first.get('message')}")
        else:
            self.outcomes["failed"] += 1
            detail = first.get("message") or exchange.error or exchange.response_body[:300]
            self.say(f"  ✗ {name} failed (HTTP {exchange.status}): {detail}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- the webhooks IFTTT sends -----------------------------------------------------------------------


def webhook_send(
    http: Recorder,
    setup: ConnectionSetup,
    *,
    user_id: str,
    kind: str,
    event: str,
    data: dict[str, Any],
    event_data: dict[str, Any],
) -> tuple[int | None, str]:
    """POST one Connect webhook as IFTTT does (protocol section 11.2); returns the status and body."""
    body = {
        "sent_at": int(time.time() * 1000),
        "type": kind,
        "event": event,
        "data": {"connection_id": setup.connection_id, "user_id": user_id, "user_timezone": setup.timezone, **data},
        "event_data": event_data,
    }
    headers = {
        "IFTTT-Service-Key": setup.service_key,
        "Content-Type": "application/json",
        "X-Request-ID": uuid.uuid4().hex,
    }
    exchange = http.send("POST", f"/ifttt/v1/webhooks/{kind}/{event}", headers=headers, json_body=body)
    return exchange.status, exchange.response_body or exchange.error


def newest_event(runner: AppletRunner, event_id: str | None) -> dict[str, Any]:
    """The newest event of this service's trigger (or the one with `event_id`), as its ingredients."""
    items = runner._poll(realtime=False)
    if event_id:
        items = [item for item in items if runner._id(item) == event_id]
    if not items:
        which = f"event {event_id}" if event_id else "events"
        raise AppletError(
            f"The trigger {runner.applet.trigger} has no {which} for these trigger fields. Cause one first, "
            "or give the ingredients with --ingredient NAME=VALUE."
        )
    item = items[0]
    runner.say(f"Event {runner._id(item)} of {runner.applet.trigger} chosen.")
    return {k: v for k, v in item.items() if k != "meta"}


def run_connection(
    *,
    setup: ConnectionSetup,
    runner: AppletRunner,
    stand_in: ConnectStandIn,
    ingredients: dict[str, Any],
    wait_first: float,
    quiet: float,
    say: Callable[[str], None],
) -> dict[str, int]:
    """Enable the connection, fire the trigger, and answer the calls until they stop; returns the outcomes."""
    http = runner.http
    user_id = stand_in.user_id
    now = str(int(time.time() * 1000))
    status, text = webhook_send(
        http, setup, user_id=user_id, kind="connection", event="enabled", data={}, event_data={"enabled_at": now}
    )
    say(f"Webhook connection/enabled → {status or 'no answer'} {text[:200]}")
    if status is None or status >= 300:
        raise AppletError(f"The service did not accept connection/enabled ({status}): {text[:300]}")
    data = {
        "trigger_id": setup.trigger_id,
        "feature_id": setup.feature_id,
        "user_feature_id": setup.user_feature_id,
        "user_feature_trigger_id": f"{setup.user_feature_id}-trigger",
    }
    say(f"Webhook trigger_subscription/fired: {setup.trigger_id} {json.dumps(ingredients, ensure_ascii=False)}")
    status, text = webhook_send(
        http,
        setup,
        user_id=user_id,
        kind="trigger_subscription",
        event="fired",
        data=data,
        event_data={"ingredients": ingredients},
    )
    say(f"  → {status or 'no answer'} {text[:200]}")
    if status is None or status >= 300:
        raise AppletError(f"The service did not accept the fired trigger ({status}): {text[:300]}")
    fired_at = time.monotonic()
    # The script runs in the service's worker: wait for its first call, then until it has been quiet.
    while True:
        time.sleep(0.05)
        last = stand_in.last_call_at
        now_m = time.monotonic()
        if stand_in.busy:
            continue
        if last == 0.0 and now_m - fired_at >= wait_first:
            say(f"No Connect API call within {wait_first:g} s of the trigger (does the connection have a script?).")
            break
        if last and now_m - last >= quiet:
            break
    outcomes = dict(stand_in.outcomes)
    say(
        f"Connection done: {len(stand_in.calls)} Connect API call(s); this service's actions "
        f"{outcomes['done']} done, {outcomes['skipped']} skipped, {outcomes['failed']} failed; "
        f"{outcomes['recorded']} call(s) for other services recorded."
    )
    return outcomes
