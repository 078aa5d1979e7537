"""An HTTP client that speaks to a service as IFTTT does, and keeps every exchange for the report."""

from __future__ import annotations

import json
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
TIMEOUT_SECONDS = 30
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


def _mask(name: str, value: str) -> str:
    """Keys and tokens are shown by their first characters only: reports end up in CI logs."""
    if name.lower() in ("ifttt-service-key", "ifttt-channel-key", "authorization") and len(value) > 12:
        return value[:12] + "…"
    return value


def _mask_form(name: str, value: str) -> str:
    if name in ("password", "client_secret"):
        return "…"
    if name in ("code", "token", "refresh_token") and len(value) > 8:
        return value[:8] + "…"
    return value


class Recorder:
    """Sends requests and hands each exchange to whoever is listening (the running check)."""

    def __init__(
        self, base_url: str, *, session: requests.Session | None = None, listeners: list[list[Exchange]] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        # Recorders that share this list report to the same check (a browser and IFTTT's servers).
        self.listeners: list[list[Exchange]] = listeners if listeners is not None else []

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
        exchange = Exchange(method=method, url=self.url(path), request_headers=sent, request_body=body_text)
        try:
            response = self.session.request(
                method, exchange.url, headers=sent, data=data, timeout=TIMEOUT_SECONDS, allow_redirects=follow_redirects
            )
        except requests.RequestException as exc:
            exchange.error = str(exc)
        else:
            exchange.status = response.status_code
            exchange.response_headers = dict(response.headers)
            exchange.response_body = response.content.decode("utf-8", "replace")
        for listener in self.listeners:
            listener.append(exchange)
        return exchange
