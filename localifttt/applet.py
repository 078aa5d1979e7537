"""IFTTT running one Applet against a service: poll the trigger, run the action for each new event.

What IFTTT does, in order: it enables the Applet by polling the trigger with a fresh trigger identity
(the events already there are history, not news); it polls again now and then, and at once when the
service's Realtime notification names the identity or the user (adding `X-IFTTT-Realtime: 1`); it
runs the action once per `meta.id` it has not seen, with ingredients filled into the action's fields;
and when the Applet is turned off it deletes the trigger identity.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .client import Exchange, Recorder
from .endpoints import API, USER, option_values

_INGREDIENT = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
REALTIME_PATH = "/v1/notifications"


class AppletError(Exception):
    """The Applet cannot run; the message says what to change."""


@dataclass(frozen=True)
class AppletQuery:
    """A query the Applet runs after its trigger fires; its first row's ingredients are `{{slug.name}}`."""

    slug: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Filter:
    """The simplest filter code: run the action only if an ingredient equals (or not) a value."""

    ingredient: str
    op: str  # "==" or "!="
    value: str

    def holds(self, ingredients: dict[str, Any]) -> bool:
        actual = ingredients.get(self.ingredient)
        text = actual if isinstance(actual, str) else "" if actual is None else json.dumps(actual)
        return (text == self.value) == (self.op == "==")


@dataclass(frozen=True)
class Applet:
    trigger: str
    trigger_fields: dict[str, str]
    action: str
    action_fields: dict[str, str]
    queries: tuple[AppletQuery, ...] = ()
    only_if: Filter | None = None
    source: dict[str, str] = field(
        default_factory=lambda: {"id": "local-applet", "url": "https://ifttt.com/applets/local-applet"}
    )


def fill(template: str, ingredients: dict[str, Any]) -> tuple[str, list[str]]:
    """The template with `{{ingredient}}` filled in, and the names it used that the event lacks."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ingredients:
            missing.append(name)
            return ""
        value = ingredients[name]
        return value if isinstance(value, str) else json.dumps(value)

    return _INGREDIENT.sub(one, template), missing


# --- the Realtime endpoint ------------------------------------------------------------------------
@dataclass
class Notification:
    trigger_identities: set[str]
    user_ids: set[str]


class RealtimeEndpoint:
    """IFTTT's Realtime API on a local port: `POST /v1/notifications` queues what it names."""

    def __init__(self, host: str, port: int, *, service_key: str, say: Callable[[str], None]) -> None:
        self.notifications: queue.Queue[Notification] = queue.Queue()
        self.say = say
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                key = self.headers.get("IFTTT-Service-Key") or ""
                if service_key and not hmac.compare_digest(key.encode(), service_key.encode()):
                    endpoint.say("Realtime: refused a notification with a wrong or missing IFTTT-Service-Key.")
                    return self._answer(401, {"errors": [{"message": "Wrong IFTTT-Service-Key."}]})
                try:
                    entries = json.loads(raw)["data"]
                    assert isinstance(entries, list)
                except (ValueError, KeyError, TypeError, AssertionError):
                    endpoint.say(f'Realtime: refused a notification that is not {{"data": [...]}}: {raw[:200]!r}')
                    return self._answer(400, {"errors": [{"message": 'The body must be {"data": [...]}.'}]})
                objects = [e for e in entries if isinstance(e, dict)]
                identities = {str(e["trigger_identity"]) for e in objects if "trigger_identity" in e}
                users = {str(e["user_id"]) for e in objects if "user_id" in e}
                endpoint.notifications.put(Notification(identities, users))
                self._answer(200, {"data": {}})

            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}{REALTIME_PATH}"

    @contextmanager
    def running(self) -> Iterator[RealtimeEndpoint]:
        thread = threading.Thread(target=self.server.serve_forever, name="localifttt-realtime", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(timeout=10)


# --- the Applet -----------------------------------------------------------------------------------
class AppletRunner:
    def __init__(self, base_url: str, token: str, applet: Applet, *, say: Callable[[str], None]) -> None:
        self.http = Recorder(base_url)
        self.token = token
        self.applet = applet
        self.say = say
        self.identity = secrets.token_hex(20)
        self.seen: set[str] = set()
        self.user_id = ""
        self.runs = 0
        # Outcomes of the runs: the action answered with a record, was skipped (by the service or the
        # filter), or failed.
        self.done = 0
        self.skipped = 0
        self.failed = 0
        self.trigger_fields = dict(applet.trigger_fields)
        self.action_fields = dict(applet.action_fields)
        self.query_fields = [dict(query.fields) for query in applet.queries]

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Exchange:
        sent = {"Authorization": f"Bearer {self.token}", **headers}
        return self.http.send(method, API + path, headers=sent, json_body=body if method != "GET" else None)

    def answer(self, exchange: Exchange, what: str) -> Any:
        """The JSON of a 2xx answer, or an AppletError that quotes the service."""
        if exchange.status is None:
            raise AppletError(f"{what}: the service did not answer ({exchange.error}). Is it running?")
        try:
            body = exchange.json()
        except ValueError:
            body = None
        if not 200 <= exchange.status < 300:
            errors = body.get("errors") if isinstance(body, dict) else None
            message = errors[0].get("message") if isinstance(errors, list) and errors else exchange.response_body
            raise AppletError(f"{what}: HTTP {exchange.status}: {message}")
        return body

    # --- turning the Applet on and off ------------------------------------------------------------
    def connect(self) -> None:
        info = self.answer(self.call("GET", "/user/info"), "Checking the access token")
        self.user_id = str(info["data"]["id"])
        self.say(f"Connected as {info['data'].get('name')} (user id {self.user_id}).")
        self.trigger_fields = self._resolve("triggers", self.applet.trigger, self.trigger_fields)
        self.action_fields = self._resolve("actions", self.applet.action, self.action_fields)
        self.query_fields = [
            self._resolve("queries", query.slug, fields)
            for query, fields in zip(self.applet.queries, self.query_fields, strict=True)
        ]

    def _resolve(self, kind: str, slug: str, fields: dict[str, str]) -> dict[str, str]:
        """Dropdown fields take an option's value; a person names the option's label ("Desk lamp")."""
        resolved = dict(fields)
        for name, value in fields.items():
            if "{{" in value:
                continue  # filled from the event's ingredients, as IFTTT does
            exchange = self.call("POST", f"/{kind}/{slug}/fields/{name}/options", {"user": USER})
            if exchange.status == 404:
                continue  # a text field
            options = self.answer(exchange, f"Reading the options of {kind[:-1]} field {name}")["data"]
            if value in option_values(options):
                continue
            labels = _labels(options)
            match = labels.get(value.strip().lower())
            if match is None:
                choices = ", ".join(sorted(set(_label_names(options)))) or "none"
                raise AppletError(f"“{value}” is not an option of {kind[:-1]} field {name}. The options: {choices}.")
            resolved[name] = match
            self.say(f"{kind[:-1].capitalize()} field {name}: “{value}” is option {match}.")
        return resolved

    def enable(self) -> None:
        items = self._poll(realtime=False)
        self.seen.update(self._id(item) for item in items)
        self.say(
            f"Applet on: when {self.applet.trigger} {self.describe(self.applet.trigger_fields)}, "
            f"then {self.applet.action} {self.describe(self.applet.action_fields)}. "
            f"{len(items)} earlier event(s) are history; only new ones run the action."
        )

    def disable(self) -> None:
        exchange = self.call("DELETE", f"/triggers/{self.applet.trigger}/trigger_identity/{self.identity}")
        outcome = f"HTTP {exchange.status}" if exchange.status else f"no answer ({exchange.error})"
        self.say(f"Applet off: deleted trigger identity {self.identity[:12]}… ({outcome}).")

    # --- polling and running ----------------------------------------------------------------------
    def _poll(self, *, realtime: bool) -> list[dict[str, Any]]:
        body = {
            "trigger_identity": self.identity,
            "triggerFields": self.trigger_fields,
            "limit": 50,
            "user": USER,
            "ifttt_source": self.applet.source,
        }
        headers = {"X-IFTTT-Realtime": "1"} if realtime else {}
        data = self.answer(self.call("POST", f"/triggers/{self.applet.trigger}", body, **headers), "Polling")["data"]
        return [item for item in data if isinstance(item, dict)]

    def check(self, *, realtime: bool) -> int:
        """Poll once and run the action for each new event, oldest first. Returns how many ran."""
        items = self._poll(realtime=realtime)
        fresh = [item for item in items if self._id(item) not in self.seen]
        how = "Realtime poll" if realtime else "Poll"
        if not fresh:
            self.say(f"{how}: nothing new ({len(items)} event(s), all seen).")
            return 0
        self.say(f"{how}: {len(fresh)} new event(s).")
        for item in reversed(fresh):  # IFTTT's answers are newest first
            self.seen.add(self._id(item))
            self.run_action(item)
        return len(fresh)

    def run_queries(self, ingredients: dict[str, Any]) -> dict[str, Any]:
        """Run the Applet's queries, their fields filled from the trigger's ingredients; the first row of
        each adds `slug.ingredient` to what the action's fields may use (as IFTTT offers them)."""
        found: dict[str, Any] = {}
        for query, template in zip(self.applet.queries, self.query_fields, strict=True):
            fields = {name: fill(value, ingredients)[0] for name, value in template.items()}
            body = {"queryFields": fields, "user": USER, "limit": 1, "ifttt_source": self.applet.source}
            data = self.answer(self.call("POST", f"/queries/{query.slug}", body), f"Query {query.slug}")["data"]
            row = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
            self.say(
                f"  ? {query.slug} {json.dumps(fields, ensure_ascii=False)} → {json.dumps(row, ensure_ascii=False)}"
            )
            if not row:
                self.say(f"  (query {query.slug} returned no rows: its ingredients are empty)")
            found.update({f"{query.slug}.{name}": value for name, value in row.items()})
        return found

    def run_action(self, item: dict[str, Any]) -> None:
        ingredients = {k: v for k, v in item.items() if k != "meta"}
        self.say(f"  New event {self._id(item)}: {json.dumps(ingredients, ensure_ascii=False)}")
        self.runs += 1
        try:
            ingredients.update(self.run_queries(ingredients))
        except AppletError as exc:
            self.failed += 1
            self.say(f"  ✗ failed: {exc}. IFTTT would retry this later.")
            return
        condition = self.applet.only_if
        if condition is not None and not condition.holds(ingredients):
            self.skipped += 1
            shown = json.dumps(ingredients.get(condition.ingredient), ensure_ascii=False)
            self.say(f"  – skipped by the filter: {condition.ingredient} is {shown}")
            return
        fields: dict[str, str] = {}
        for name, template in self.action_fields.items():
            fields[name], missing = fill(template, ingredients)
            if missing:
                self.say(f"  (no ingredient {', '.join(missing)} in this event; it has {', '.join(ingredients)})")
        self.say(f"  → {self.applet.action} {json.dumps(fields, ensure_ascii=False)}")
        exchange = self.call("POST", f"/actions/{self.applet.action}", {"actionFields": fields, "user": USER})
        body: Any = None
        with contextlib.suppress(ValueError):
            body = exchange.json()
        if exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
            record = body["data"][0] if body["data"] else {}
            self.done += 1
            self.say(f"  ✓ done: record {record.get('id')} {record.get('url') or ''}".rstrip())
            return
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        if exchange.status == 400 and first.get("status") == "SKIP":
            self.skipped += 1
            self.say(f"  – skipped by the service: {first.get('message')}")
        else:
            self.failed += 1
            detail = first.get("message") or exchange.error or exchange.response_body[:300]
            self.say(f"  ✗ failed (HTTP {exchange.status}): {detail}. IFTTT would retry this later.")

    def concerns(self, notification: Notification) -> bool:
        return self.identity in notification.trigger_identities or self.user_id in notification.user_ids

    def nudge(self, actions: list[str]) -> None:
        """Cause a trigger event through the service's own actions, with the trigger's field values."""
        for action in actions:
            exchange = self.call("POST", f"/actions/{action}", {"actionFields": self.trigger_fields, "user": USER})
            outcome = f"HTTP {exchange.status}" if exchange.status else f"no answer ({exchange.error})"
            self.say(f"Nudge: {action} {self.describe(self.trigger_fields)} ({outcome}).")

    @staticmethod
    def _id(item: dict[str, Any]) -> str:
        meta = item.get("meta")
        return str(meta.get("id")) if isinstance(meta, dict) else json.dumps(item, sort_keys=True)

    @staticmethod
    def describe(fields: dict[str, str]) -> str:
        return "(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")" if fields else ""


def _labels(options: list[Any]) -> dict[str, str]:
    """Lower-case label → value, for every choosable option (a group's label is not choosable)."""
    found: dict[str, str] = {}
    for option in options:
        if not isinstance(option, dict):
            continue
        for child in option.get("values") or [option]:
            if isinstance(child, dict) and isinstance(child.get("label"), str) and isinstance(child.get("value"), str):
                found.setdefault(child["label"].strip().lower(), child["value"])
    return found


def _label_names(options: list[Any]) -> list[str]:
    names: list[str] = []
    for option in options:
        if isinstance(option, dict):
            for child in option.get("values") or [option]:
                if isinstance(child, dict) and isinstance(child.get("label"), str):
                    names.append(child["label"])
    return names


def run_applet(
    runner: AppletRunner,
    endpoint: RealtimeEndpoint | None,
    *,
    poll_every: float,
    stop_after: float | None = None,
    stop_after_runs: int | None = None,
    nudge_after: float | None = None,
    nudge_actions: list[str] | None = None,
    hint: str = "",
    stop: threading.Event | None = None,
    cause: Callable[[], list[str]] | None = None,
) -> None:
    """Enable the Applet, then wait for notifications (polling every `poll_every` s) until told to stop."""
    stop = stop or threading.Event()
    runner.connect()
    runner.enable()
    started = time.monotonic()
    next_poll = started + poll_every
    nudged = not (nudge_after is not None and (nudge_actions or cause is not None))
    if hint:
        runner.say(hint)
    if not nudged and cause is not None:
        runner.say(f"If nothing happens within {nudge_after:g} s, this will cause the trigger itself.")
    elif not nudged:
        runner.say(
            f"If nothing happens within {nudge_after:g} s, this will cause an event itself by running "
            f"{' then '.join(nudge_actions or [])} {runner.describe(runner.applet.trigger_fields)}."
        )
    try:
        while not stop.is_set():
            now = time.monotonic()
            if stop_after is not None and now - started >= stop_after:
                runner.say(f"Stopping after {stop_after:g} s.")
                break
            if stop_after_runs is not None and runner.runs >= stop_after_runs:
                break
            if not nudged and nudge_after is not None and now - started >= nudge_after and runner.runs == 0:
                nudged = True
                runner.say(f"No new event in {nudge_after:g} s, so the demo causes one.")
                if cause is not None:
                    for line in cause():
                        runner.say(f"Cause: {line}.")
                else:
                    runner.nudge(nudge_actions or [])
                if endpoint is None:  # nothing will notify us: look for the event at once
                    next_poll = time.monotonic()
            wait = max(0.0, min(next_poll - now, 0.5))
            notification: Notification | None = None
            if endpoint is not None:
                try:
                    notification = endpoint.notifications.get(timeout=wait)
                except queue.Empty:
                    notification = None
            else:
                stop.wait(wait)
            if notification is not None:
                if runner.concerns(notification):
                    runner.say("Realtime notification for this Applet: polling now.")
                    runner.check(realtime=True)
                    next_poll = time.monotonic() + poll_every
                else:
                    runner.say("Realtime notification for another trigger identity or user: ignored.")
            elif time.monotonic() >= next_poll:
                runner.check(realtime=False)
                next_poll = time.monotonic() + poll_every
    finally:
        runner.disable()
