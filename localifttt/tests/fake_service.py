"""A tiny, correct IFTTT service that can be told to break one thing at a time.

It has one trigger (`new_thing`, with a dropdown `category`), one action (`create_thing`, SKIP on an
empty title), one query (`list_things`, signed cursors) and an OAuth2 provider with a sign-in page
and a consent page. Each name in `FAULTS` makes it get exactly one part of the protocol wrong, so the
tests can show that `ifttt_check` notices.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from localifttt.tests.ports import bind_in_range

SERVICE_KEY = "fake-service-key"
CLIENT_ID = "fake-ifttt"
CLIENT_SECRET = "fake-client-secret"
REDIRECT_URI = "https://ifttt.com/channels/fake/authorize"
USERNAME, PASSWORD = "alice", "alice-password"
TEST_TOKEN = "fake-test-user-token"
CATEGORIES = {"Pets": {"cats": "Cats", "dogs": "Dogs"}, "": {"birds": "Birds"}}
GRACE_SECONDS = 60

FAULTS = {
    "wrong_order": "trigger items oldest first",
    "unstable_ids": "a fresh meta.id for every event on every poll",
    "ignores_limit": "trigger limit ignored",
    "two_items": "only two trigger events",
    "string_timestamps": "meta.timestamp as text",
    "millisecond_timestamps": "meta.timestamp in milliseconds",
    "plain_errors": 'errors as {"error": "…"} instead of IFTTT\'s envelope',
    "no_skip": "the skip sample gets a 400 without status SKIP",
    "status_ignores_key": "status answers 200 to any service key",
    "setup_ignores_key": "test/setup answers to any service key",
    "token_ignored": "any bearer token is accepted",
    "fields_optional": "a trigger poll without triggerFields is answered",
    "rejects_extra_data": "unknown JSON keys are refused",
    "no_charset": "Content-Type without charset",
    "malformed_json_500": "malformed JSON crashes with 500",
    "unknown_slug_500": "unknown slugs crash with 500",
    "deep_options": "option groups nested two levels deep",
    "validation_always_valid": "field validation accepts anything",
    "action_object": "action data is an object, not an array",
    "cursor_on_last_page": "the last query page still has a cursor",
    "no_cursor": "queries never return a cursor",
    "cursor_skips_row": "each query page skips a row",
    "forged_cursor_accepted": "an unknown cursor restarts the query",
    "delete_identity_404": "trigger identity DELETE answers 404",
    "deny_grants": "denying consent still redirects with a code",
    "state_dropped": "the redirect to IFTTT loses the state",
    "code_reusable": "an authorization code works twice",
    "refresh_rotates_immediately": "a used refresh token stops working at once",
    "revoke_ignored": "revocation leaves the token working",
}

# Valid but unusual behaviour, as other services show it: `ifttt_check` must not call any of it a failure.
QUIRKS = {
    "closes_idle_connections": "keep-alive connections are reset when a second request arrives on them",
    "identical_events": "50 events with the same timestamp and the same content (each with its own id)",
    "long_history": "a query history of 3,000 rows (60 pages of 50)",
    "hanging_delete": "a trigger identity DELETE never answers",
    "no_channel_key": "the legacy IFTTT-Channel-Key header is not accepted",
    "sample_not_in_options": "the trigger's sample value is valid but not among the options",
}


@dataclass
class FakeState:
    faults: frozenset[str]
    # Without OAuth, IFTTT sends the service key on every call and test/setup gives no token.
    oauth: bool = True
    base_url: str = ""
    sessions: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=lambda: {TEST_TOKEN: "test-user"})
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    things: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        if "identical_events" in self.faults:
            second = 1_790_000_000
            return [{"title": "Ping", "meta": {"id": f"ping-{n}", "timestamp": second}} for n in range(50, 0, -1)]
        count = 2 if "two_items" in self.faults else 5
        now = 1_790_000_000
        items = []
        for n in range(count, 0, -1):  # newest (highest n) first
            stamp = now - (count - n) * 60
            meta: dict[str, Any] = {"id": f"thing-event-{n}", "timestamp": stamp}
            if "unstable_ids" in self.faults:
                meta["id"] = secrets.token_hex(6)
            if "string_timestamps" in self.faults:
                meta["timestamp"] = str(stamp)
            if "millisecond_timestamps" in self.faults:
                meta["timestamp"] = stamp * 1000
            items.append({"title": f"Thing {n}", "created_at": f"2026-09-21T12:{n:02d}:00Z", "meta": meta})
        if "wrong_order" in self.faults:
            items.reverse()
        return items

    def rows(self) -> list[dict[str, Any]]:
        count = 3000 if "long_history" in self.faults else 7
        return [{"title": f"Thing {n}", "position": n} for n in range(1, count + 1)]

    def options(self) -> list[dict[str, Any]]:
        options: list[dict[str, Any]] = []
        for group, choices in CATEGORIES.items():
            children: list[dict[str, Any]] = [
                {"label": label, "value": value}
                for value, label in choices.items()
                if not (value == "cats" and "sample_not_in_options" in self.faults)
            ]
            if group:
                if "deep_options" in self.faults:
                    children = [{"label": "Nested", "values": children}]
                options.append({"label": group, "values": children})
            else:
                options.extend(children)
        return options

    def valid_category(self, value: Any) -> bool:
        if "validation_always_valid" in self.faults:
            return True
        return any(value in choices for choices in CATEGORIES.values())


_CURSOR_KEY = b"fake-cursor-key"


def cursor_encode(offset: int) -> str:
    mac = hmac.new(_CURSOR_KEY, str(offset).encode(), hashlib.sha256).hexdigest()[:16]
    return f"{offset}.{mac}"


def cursor_decode(cursor: str) -> int | None:
    offset, _, mac = cursor.partition(".")
    if not offset.isdigit() or not hmac.compare_digest(mac, cursor_encode(int(offset)).partition(".")[2]):
        return None
    return int(offset)


class Reply(Exception):
    """Raised by a route to answer at once."""

    def __init__(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class Handler(BaseHTTPRequestHandler):
    state: FakeState  # set on the class made for each server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        if "closes_idle_connections" not in self.state.faults:
            super().handle()
            return
        # Answer one request on a keep-alive connection, then reset the connection when the next one
        # arrives, as a server whose idle timeout just expired does.
        self.handle_one_request()
        try:
            self.connection.settimeout(5)
            waiting = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if waiting:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    # --- plumbing ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(length) if length else b""
        try:
            if parts.path.startswith("/ifttt/v1/"):
                self._api(method, parts.path[len("/ifttt/v1/") :])
            else:
                self._web(method, parts.path)
            raise Reply(404, self._error("No such page."))
        except Reply as reply:
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        headers = dict(reply.headers)
        if isinstance(reply.body, str):
            payload = reply.body.encode()
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        elif reply.body is None:
            payload = b""
        else:
            payload = json.dumps(reply.body).encode()
            charset = "" if "no_charset" in self.state.faults else "; charset=utf-8"
            headers.setdefault("Content-Type", f"application/json{charset}")
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (a timeout under test)

    def _error(self, message: str, *, skip: bool = False) -> dict[str, Any]:
        if "plain_errors" in self.state.faults:
            return {"error": message}
        error: dict[str, Any] = {"message": message}
        if skip:
            error["status"] = "SKIP"
        return {"errors": [error]}

    def _json(self) -> dict[str, Any]:
        if not self.raw.strip():
            return {}
        try:
            body = json.loads(self.raw)
        except ValueError:
            if "malformed_json_500" in self.state.faults:
                raise Reply(500, self._error("Internal error.")) from None
            raise Reply(400, self._error("The body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise Reply(400, self._error("The body must be a JSON object."))
        if "rejects_extra_data" in self.state.faults:
            known = {"triggerFields", "actionFields", "queryFields", "trigger_identity", "limit", "cursor"}
            known |= {"user", "ifttt_source", "value", "values"}
            if set(body) - known:
                raise Reply(400, self._error("Unknown keys."))
        return body

    def _service_key(self, *, ignore_fault: str = "") -> None:
        key = self.headers.get("IFTTT-Service-Key")
        if "no_channel_key" not in self.state.faults:
            key = key or self.headers.get("IFTTT-Channel-Key")
        if ignore_fault in self.state.faults:
            return
        if key != SERVICE_KEY:
            raise Reply(401, self._error("Channel/Service key is not correct"))

    def _user(self) -> str:
        if not self.state.oauth:
            self._service_key()
            return "test-user"
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if "token_ignored" in self.state.faults and scheme == "Bearer":
            return "test-user"
        user = self.state.tokens.get(token) if scheme == "Bearer" else None
        if user is None:
            raise Reply(401, self._error("Invalid access token."))
        return user

    def _limit(self, body: dict[str, Any]) -> int:
        limit = body.get("limit", 50)
        if not isinstance(limit, int) or limit < 0:
            raise Reply(400, self._error("limit must be a whole number."))
        return limit

    def _unknown(self) -> Reply:
        if "unknown_slug_500" in self.state.faults:
            return Reply(500, self._error("Internal error."))
        return Reply(404, self._error("Unknown endpoint."))

    # --- the Service API --------------------------------------------------------------------------
    def _api(self, method: str, path: str) -> None:
        state = self.state
        if path == "status" and method == "GET":
            self._service_key(ignore_fault="status_ignores_key")
            raise Reply(200, {"data": {}})
        if path == "test/setup" and method == "POST":
            self._service_key(ignore_fault="setup_ignores_key")
            samples = {
                "triggers": {"new_thing": {"category": "cats"}},
                "triggerFieldValidations": {"new_thing": {"category": {"valid": "dogs", "invalid": "unicorns"}}},
                "actions": {"create_thing": {"title": "Hello"}},
                "actionRecordSkipping": {"create_thing": {"title": ""}},
                "queries": {"list_things": {"category": "cats"}},
            }
            token = {"accessToken": TEST_TOKEN} if state.oauth else {}
            raise Reply(200, {"data": {**token, "samples": samples}})
        self._user()
        if path == "user/info" and method == "GET":
            raise Reply(200, {"data": {"id": "user-1", "name": "Alice", "url": f"{state.base_url}/account"}})
        if method == "DELETE" and path.startswith("triggers/new_thing/trigger_identity/"):
            if "hanging_delete" in state.faults:
                time.sleep(5)
            if "delete_identity_404" in state.faults:
                raise Reply(404, self._error("Unknown identity."))
            raise Reply(200, {"data": {}})
        body = self._json() if method == "POST" else {}
        if path == "triggers/new_thing":
            self._trigger(body)
        if path in ("triggers/new_thing/fields/category/options", "queries/list_things/fields/category/options"):
            raise Reply(200, {"data": state.options()})
        if path == "triggers/new_thing/fields/category/validate":
            if state.valid_category(body.get("value")):
                raise Reply(200, {"data": {"valid": True}})
            raise Reply(200, {"data": {"valid": False, "message": "There is no such category."}})
        if path == "triggers/new_thing/validate":
            values = body.get("values") or {}
            verdict = {"valid": True} if state.valid_category(values.get("category")) else {}
            raise Reply(200, {"data": {"category": verdict or {"valid": False, "message": "No such category."}}})
        if path == "actions/create_thing":
            self._action(body)
        if path == "queries/list_things":
            self._query(body)
        raise self._unknown()

    def _trigger(self, body: dict[str, Any]) -> None:
        fields = body.get("triggerFields")
        if fields is None and "fields_optional" not in self.state.faults:
            raise Reply(400, self._error("Missing required field: triggerFields"))
        if fields is not None and not isinstance(fields, dict):
            raise Reply(400, self._error("triggerFields must be an object."))
        if fields is not None and not self.state.valid_category(fields.get("category")):
            raise Reply(400, self._error("There is no such category."))
        limit = self._limit(body)
        items = self.state.events()
        raise Reply(200, {"data": items if "ignores_limit" in self.state.faults else items[:limit]})

    def _action(self, body: dict[str, Any]) -> None:
        fields = body.get("actionFields")
        if not isinstance(fields, dict):
            raise Reply(400, self._error("Missing required field: actionFields"))
        if not fields.get("title"):
            raise Reply(400, self._error("A thing needs a title.", skip="no_skip" not in self.state.faults))
        with self.state.lock:
            self.state.things += 1
            number = self.state.things
        record = {"id": f"thing-{number}", "url": f"{self.state.base_url}/things/{number}"}
        raise Reply(200, {"data": record if "action_object" in self.state.faults else [record]})

    def _query(self, body: dict[str, Any]) -> None:
        faults = self.state.faults
        if not isinstance(body.get("queryFields"), dict):
            raise Reply(400, self._error("Missing required field: queryFields"))
        limit = self._limit(body)
        offset = 0
        if body.get("cursor"):
            decoded = cursor_decode(str(body["cursor"]))
            if decoded is None and "forged_cursor_accepted" not in faults:
                raise Reply(400, self._error("That cursor is not one of ours."))
            offset = decoded or 0
        rows = self.state.rows()
        page = rows[offset : offset + limit]
        answer: dict[str, Any] = {"data": page}
        next_offset = offset + limit + (1 if "cursor_skips_row" in faults else 0)
        more = next_offset < len(rows)
        if ("cursor_on_last_page" in faults or more) and "no_cursor" not in faults:
            answer["cursor"] = cursor_encode(min(next_offset, len(rows)))
        raise Reply(200, answer)

    # --- OAuth2 and its pages ---------------------------------------------------------------------
    def _cookies(self) -> dict[str, str]:
        jar = SimpleCookie(self.headers.get("Cookie") or "")
        return {name: morsel.value for name, morsel in jar.items()}

    def _web(self, method: str, path: str) -> None:
        if path == "/accounts/login/":
            self._login(method)
        if path == "/oauth/authorize/":
            self._authorize(method)
        if path == "/oauth/token/" and method == "POST":
            self._token()
        if path == "/oauth/revoke_token/" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(self.raw.decode()).items()}
            if form.get("client_secret") != CLIENT_SECRET:
                raise Reply(401, {"error": "invalid_client"})
            if "revoke_ignored" not in self.state.faults:
                self.state.tokens.pop(form.get("token", ""), None)
            raise Reply(200, None)

    def _login(self, method: str) -> None:
        csrf = self._cookies().get("csrf") or secrets.token_hex(8)
        next_url = self.query.get("next", "/")
        error = ""
        if method == "POST":
            form = {k: v[0] for k, v in parse_qs(self.raw.decode()).items()}
            if form.get("csrf") != self._cookies().get("csrf"):
                raise Reply(403, "<p>CSRF check failed.</p>")
            if form.get("username") == USERNAME and form.get("password") == PASSWORD:
                session = secrets.token_hex(8)
                self.state.sessions[session] = USERNAME
                cookie = f"session={session}; Path=/"
                raise Reply(302, "", headers={"Location": form.get("next", "/"), "Set-Cookie": cookie})
            error = "<p>Wrong user name or password.</p>"
            next_url = form.get("next", "/")
        page = (
            f"<html><body><h1>Sign in</h1>{error}<form method='post'>"
            f"<input type='hidden' name='csrf' value='{csrf}'>"
            f"<input type='hidden' name='next' value='{escape(next_url)}'>"
            "<label>User name <input type='text' name='username'></label>"
            "<label>Password <input type='password' name='password'></label>"
            "<button type='submit'>Sign in</button></form></body></html>"
        )
        raise Reply(200, page, headers={"Set-Cookie": f"csrf={csrf}; Path=/"})

    def _authorize(self, method: str) -> None:
        user = self.state.sessions.get(self._cookies().get("session", ""))
        if user is None:
            raise Reply(302, "", headers={"Location": "/accounts/login/?" + urlencode({"next": self.path})})
        if method == "GET":
            if self.query.get("client_id") != CLIENT_ID or self.query.get("redirect_uri") != REDIRECT_URI:
                raise Reply(400, "<p>Unknown client or redirect URI.</p>")
            hidden = "".join(
                f"<input type='hidden' name='{name}' value='{escape(self.query.get(name, ''))}'>"
                for name in ("client_id", "redirect_uri", "state", "scope", "response_type")
            )
            page = (
                "<html><body><h1>Let IFTTT use your things?</h1>"
                f"<form method='post' action='/oauth/authorize/'>{hidden}"
                "<input type='submit' value='Cancel'>"
                "<input type='submit' name='allow' value='Authorize'></form></body></html>"
            )
            raise Reply(200, page)
        form = {k: v[0] for k, v in parse_qs(self.raw.decode()).items()}
        state = "" if "state_dropped" in self.state.faults else form.get("state", "")
        if "allow" in form or "deny_grants" in self.state.faults:
            code = secrets.token_hex(8)
            self.state.codes[code] = {"user": user, "used": False}
            location = f"{REDIRECT_URI}?{urlencode({'code': code, 'state': state})}"
        else:
            location = f"{REDIRECT_URI}?{urlencode({'error': 'access_denied', 'state': state})}"
        raise Reply(302, "", headers={"Location": location})

    def _issue(self, user: str) -> dict[str, Any]:
        access, refresh = secrets.token_hex(12), secrets.token_hex(12)
        self.state.tokens[access] = user
        self.state.refresh[refresh] = {"user": user, "used_at": None}
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh}

    def _token(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.raw.decode()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            raise Reply(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = self.state.codes.get(form.get("code", ""))
            if code is None or (code["used"] and "code_reusable" not in self.state.faults):
                raise Reply(400, {"error": "invalid_grant"})
            code["used"] = True
            raise Reply(200, self._issue(code["user"]))
        if grant == "refresh_token":
            record = self.state.refresh.get(form.get("refresh_token", ""))
            if record is None:
                raise Reply(400, {"error": "invalid_grant"})
            used_at = record["used_at"]
            grace = 0 if "refresh_rotates_immediately" in self.state.faults else GRACE_SECONDS
            if used_at is not None and time.monotonic() - used_at >= grace:
                raise Reply(400, {"error": "invalid_grant"})
            record["used_at"] = used_at or time.monotonic()
            raise Reply(200, self._issue(record["user"]))
        raise Reply(400, {"error": "unsupported_grant_type"})


@contextmanager
def fake_service(*faults: str, oauth: bool = True) -> Iterator[str]:
    """Serve a fake IFTTT service with these faults; yields its base URL."""
    unknown = set(faults) - set(FAULTS) - set(QUIRKS)
    if unknown:
        raise ValueError(f"unknown faults: {sorted(unknown)}")
    state = FakeState(faults=frozenset(faults), oauth=oauth)
    # HTTP/1.1 keeps connections open between requests, which the connection quirk needs.
    protocol = "HTTP/1.1" if "closes_idle_connections" in faults else "HTTP/1.0"
    handler = type("BoundHandler", (Handler,), {"state": state, "protocol_version": protocol})
    server = bind_in_range(lambda port: ThreadingHTTPServer(("127.0.0.1", port), handler))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
