"""An HTTP client that speaks to a service as IFTTT does, and keeps every exchange for the report."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

# What IFTTT sends on every call (protocol section 1), plus the tester's own marker.
IFTTT_HEADERS = {
    "Accept": "application/json",
    "Accept-Charset": "utf-8",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "localifttt/1.0 (IFTTT endpoint checks)",
}
# Per request: IFTTT documents no timeout, but its own edge-case service expects an answer well within
# 20 s. A check that waits longer reports "no answer", and the run goes on.
TIMEOUT_SECONDS = 10.0
_SHOWN_BODY_CHARS = 2000


@dataclass
class Exchange:
    """One request and what came back (or why nothing did)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str = ""
    # Set when a pooled connection the service had already closed was replaced by a fresh one.
    note: str = ""

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.response_headers.items() if k.lower() == "content-type"), "")

    def json(self) -> Any:
        """The response body as JSON; raises ValueError with a readable message if it is not."""
        if not self.response_body.strip():
            raise ValueError("the response body is empty, but JSON was expected")
        try:
            return json.loads(self.response_body)
        except ValueError as exc:
            raise ValueError(f"the response body is not JSON ({exc})") from None

    def describe(self) -> str:
        """The exchange as a person reads it in a failure report."""
        lines = [f"→ {self.method} {self.url}"]
        if self.note:
            lines.append(f"  ({self.note})")
        lines += [f"  {k}: {_mask(k, v)}" for k, v in self.request_headers.items() if k not in IFTTT_HEADERS]
        if self.request_body:
            lines.append("  " + _clip(self.request_body))
        if self.error:
            lines.append(f"← no response: {self.error}")
            return "\n".join(lines)
        lines.append(f"← {self.status}  Content-Type: {self.content_type or '(none)'}")
        location = next((v for k, v in self.response_headers.items() if k.lower() == "location"), "")
        if location:
            lines.append(f"  Location: {location}")
        if self.response_body:
            lines.append("  " + _clip(self.response_body))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "request_headers": {k: _mask(k, v) for k, v in self.request_headers.items()},
            "request_body": self.request_body,
            "status": self.status,
            "response_headers": self.response_headers,
            "response_body": _clip(self.response_body),
            "error": self.error,
        }


def _clip(text: str) -> str:
    text = text.replace("\n", " ").strip()
    return text if len(text) <= _SHOWN_BODY_CHARS else text[:_SHOWN_BODY_CHARS] + f"… ({len(text)} characters)"


SECRET_HEADERS = ("ifttt-service-key", "ifttt-channel-key", "authorization")


def mask_secret(value: str) -> str:
    """A key or token as a report shows it: the first characters of a long one, nothing of a short one.
    Reports end up in CI logs; a short secret would be readable whole."""
    if len(value) > 16:
        return value[:8] + "…"
    return f"… ({len(value)} characters)" if value else value


def _mask(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, sep, secret = value.partition(" ")
    if sep and scheme.lower() in ("bearer", "basic", "device"):
        return f"{scheme} {mask_secret(secret)}"
    return mask_secret(value)


def _mask_form(name: str, value: str) -> str:
    if name in ("password", "client_secret"):
        return "…"
    if name in ("code", "token", "refresh_token"):
        return mask_secret(value)
    return value


class BudgetExhausted(Exception):
    """The run's time budget is spent: the check that wanted to send a request did not run."""


class Budget:
    """How long a whole run may take. Shared by every recorder of the run."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds if seconds else None

    @property
    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def _stale_connection(exc: requests.ConnectionError) -> bool:
    """The service closed a keep-alive connection we then reused: the request never reached it."""
    seen: list[BaseException] = [exc]
    for error in seen:  # grows as it goes: each error's causes and the errors it wraps
        if isinstance(error, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected):
            return True
        more = [error.__cause__, error.__context__, *error.args, getattr(error, "reason", None)]
        seen += [e for e in more if isinstance(e, BaseException) and e not in seen][: 20 - len(seen)]
    return False


class Recorder:
    """Sends requests and hands each exchange to whoever is listening (the running check)."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        listeners: list[list[Exchange]] | None = None,
        timeout: float = TIMEOUT_SECONDS,
        budget: Budget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        # Recorders that share this list report to the same check (a browser and IFTTT's servers).
        self.listeners: list[list[Exchange]] = listeners if listeners is not None else []
        self.timeout = timeout
        self.budget = budget or Budget(None)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        raw_body: str | bytes | None = None,
        form: dict[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> Exchange:
        sent = {**IFTTT_HEADERS, "X-Request-ID": uuid.uuid4().hex, **(headers or {})}
        data: str | bytes | dict[str, str] | None = None
        body_text = ""
        if json_body is not None:
            data = json.dumps(json_body)
            body_text = data
            sent.setdefault("Content-Type", "application/json")
        elif raw_body is not None:
            data = raw_body
            body_text = raw_body.decode("utf-8", "replace") if isinstance(raw_body, bytes) else raw_body
            sent.setdefault("Content-Type", "application/json")
        elif form is not None:
            data = form
            body_text = "&".join(f"{k}={_mask_form(k, v)}" for k, v in form.items())
        if self.budget.spent:
            raise BudgetExhausted(f"the run's time budget of {self.budget.seconds:g} s ran out before this check")
        exchange = Exchange(method=method, url=self.url(path), request_headers=sent, request_body=body_text)
        timeout = self.timeout
        if self.budget.deadline is not None:
            timeout = max(0.1, min(timeout, self.budget.deadline - time.monotonic()))
        response: requests.Response | None = None
        for attempt in (1, 2):
            try:
                response = self.session.request(
                    method, exchange.url, headers=sent, data=data, timeout=timeout, allow_redirects=follow_redirects
                )
                break
            except requests.Timeout:
                exchange.error = f"no answer within {timeout:g} s"
                break
            except requests.ConnectionError as exc:
                if attempt == 1 and _stale_connection(exc):
                    # IFTTT's client would open a new connection too; this is not the service's fault.
                    exchange.note = f"a pooled connection was closed by the service ({exc}); sent again on a new one"
                    self.session.close()
                    continue
                exchange.error = str(exc)
                break
            except requests.RequestException as exc:
                exchange.error = str(exc)
                break
        if response is not None:
            exchange.status = response.status_code
            exchange.response_headers = dict(response.headers)
            exchange.response_body = response.content.decode("utf-8", "replace")
        for listener in self.listeners:
            listener.append(exchange)
        return exchange
