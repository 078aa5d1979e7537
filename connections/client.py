"""A typed client for IFTTT's Connect API (https://connect.ifttt.com, v2).

Every call carries the service key; `user_id` (the user's `public_id`, as user/info gives it to
IFTTT) goes where IFTTT's docs put it: the query string for GET, PUT `user_connection` and
`refresh`, the JSON body for run, perform and test. Failures raise `ConnectError` subclasses that
carry IFTTT's message and details. 5xx answers and timeouts are retried with exponential backoff;
nothing else is, since a 4xx will not change by asking again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


class ConnectError(Exception):
    """A Connect API call that did not succeed. `code` and `details` are IFTTT's, when it sent them."""

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str = "", details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details or []

    def __str__(self) -> str:
        where = f"{self.status_code} " if self.status_code else ""
        extra = "; ".join(
            f"{d.get('parameter', '')}: {d.get('message', '')}".strip(": ") if isinstance(d, dict) else str(d)
            for d in self.details
        )
        return f"{where}{self.message}" + (f" ({extra})" if extra else "")


class ConnectBadRequest(ConnectError):
    """400: IFTTT could not understand the request."""


class ConnectUnauthorized(ConnectError):
    """401: the service key is wrong (check IFTTT_SERVICE_KEY)."""


class ConnectForbidden(ConnectError):
    """403: the key may not do this, e.g. the user has not enabled the connection."""


class ConnectNotFound(ConnectError):
    """404: unknown connection, trigger, action, query or user."""


class ConnectInvalidParameters(ConnectError):
    """422: a field value is not acceptable (see `details` for which)."""


class ConnectServerError(ConnectError):
    """5xx, still failing after the retries."""


class ConnectUnreachable(ConnectError):
    """No answer (timeout or connection failure), still after the retries."""


_ERRORS_BY_STATUS: dict[int, type[ConnectError]] = {
    400: ConnectBadRequest,
    401: ConnectUnauthorized,
    403: ConnectForbidden,
    404: ConnectNotFound,
    422: ConnectInvalidParameters,
}


@dataclass
class ConnectResponse:
    status_code: int
    body: Any  # the decoded JSON, {} for an empty body


@dataclass
class QueryPage:
    data: list[Any]
    cursor: str | None
    # The fields IFTTT says to send with the next page's request, if it said any.
    next_fields: dict[str, Any] | None
    body: dict[str, Any] = field(default_factory=dict)


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"raw": response.text[:2000]}


class ConnectClient:
    def __init__(
        self,
        *,
        base_url: str | None = None,
        service_key: str | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = (base_url or settings.IFTTT_CONNECT_URL).rstrip("/")
        self.service_key = service_key if service_key is not None else settings.IFTTT_SERVICE_KEY
        self.timeout_s = timeout_s if timeout_s is not None else settings.IFTTT_CONNECT_TIMEOUT
        self.retries = retries if retries is not None else settings.IFTTT_CONNECT_RETRIES
        self.backoff_s = backoff_s if backoff_s is not None else settings.IFTTT_CONNECT_BACKOFF
        self.session = session or requests.Session()
        self.sleep = sleep

    # --- transport ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> ConnectResponse:
        """One call, retried on 5xx and timeouts. Returns the last answer, whatever its status.

        `deadline` (a time.monotonic() value) bounds the whole call, retries included.
        Raises ConnectUnreachable only when no answer came at all.
        """
        url = f"{self.base_url}{path}"
        headers = {
            "IFTTT-Service-Key": self.service_key,
            "Accept": "application/json",
            "X-Request-ID": uuid.uuid4().hex,
        }
        attempt = 0
        while True:
            timeout = self.timeout_s
            if deadline is not None:
                timeout = min(timeout, max(0.05, deadline - time.monotonic()))
            try:
                response = self.session.request(method, url, params=params, json=body, headers=headers, timeout=timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if not self._retry(attempt, deadline, f"{method} {path}: {type(exc).__name__}"):
                    raise ConnectUnreachable(
                        f"IFTTT's Connect API did not answer {method} {path} ({type(exc).__name__}) "
                        f"after {attempt + 1} attempt(s). Check IFTTT_CONNECT_URL and try again later."
                    ) from exc
            else:
                if response.status_code not in RETRYABLE_STATUSES or not self._retry(
                    attempt, deadline, f"{method} {path}: {response.status_code}"
                ):
                    return ConnectResponse(response.status_code, _decode(response))
            attempt += 1

    def _retry(self, attempt: int, deadline: float | None, what: str) -> bool:
        if attempt >= self.retries:
            return False
        delay = self.backoff_s * (2**attempt)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        logger.info("Connect API %s; retrying in %.2f s", what, delay)
        self.sleep(delay)
        return True

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> Any:
        """A call whose failure raises the matching ConnectError; returns the decoded body."""
        response = self.request(method, path, params=params, body=body)
        if response.status_code < 400:
            return response.body
        raise self.error_for(response, f"{method} {path}")

    @staticmethod
    def error_for(response: ConnectResponse, what: str) -> ConnectError:
        body = response.body if isinstance(response.body, dict) else {}
        message = body.get("message") or f"IFTTT answered {response.status_code} to {what}"
        details = body.get("details") if isinstance(body.get("details"), list) else []
        code = str(body.get("code") or "")
        if response.status_code >= 500:
            cls: type[ConnectError] = ConnectServerError
        else:
            cls = _ERRORS_BY_STATUS.get(response.status_code, ConnectError)
        return cls(str(message), status_code=response.status_code, code=code, details=details)

    # --- endpoints -----------------------------------------------------------------------------
    @staticmethod
    def _segment(value: str) -> str:
        return quote(str(value), safe="")

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/v2/me")
        return result

    def connection_show(self, *, connection_id: str, user_id: str | None = None) -> dict[str, Any]:
        params = {"user_id": user_id} if user_id else None
        result: dict[str, Any] = self.call("GET", f"/v2/connections/{self._segment(connection_id)}", params=params)
        return result

    def user_connection_update(
        self, *, connection_id: str, user_id: str, user_features: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Replace the user's configuration of the connection (PUT user_connection)."""
        result: dict[str, Any] = self.call(
            "PUT",
            f"/v2/connections/{self._segment(connection_id)}/user_connection",
            params={"user_id": user_id},
            body={"user_features": user_features},
        )
        return result

    def user_connection_refresh(self, *, connection_id: str, user_id: str) -> None:
        self.call(
            "POST",
            f"/v2/connections/{self._segment(connection_id)}/user_connection/refresh",
            params={"user_id": user_id},
        )

    def field_options_list(
        self, *, connection_id: str, kind: str, type_id: str, user_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        """Options per field of a trigger, query, action or feature: {field: [{label, value, group?}]}."""
        if kind not in ("triggers", "queries", "actions", "features"):
            raise ValueError(f"kind must be triggers, queries, actions or features, not {kind!r}")
        body = self.call(
            "GET",
            f"/v2/connections/{self._segment(connection_id)}/{kind}/{self._segment(type_id)}/field_options",
            params={"user_id": user_id},
        )
        options = body.get("options") if isinstance(body, dict) else None
        return options if isinstance(options, dict) else {}

    @staticmethod
    def _user_body(
        user_id: str, fields: dict[str, Any] | None, user_feature_id: str | None, **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id}
        if user_feature_id:
            body["user_feature_id"] = user_feature_id
        if fields:
            body["fields"] = fields  # overrides the user's stored values for this call only
        body.update({key: value for key, value in extra.items() if value is not None})
        return body

    def action_run(
        self,
        *,
        connection_id: str,
        action_id: str,
        user_id: str,
        fields: dict[str, Any] | None = None,
        user_feature_id: str | None = None,
    ) -> None:
        """Run an action (204). Without `user_feature_id` IFTTT uses the connection's first user feature."""
        self.call(
            "POST",
            f"/v2/connections/{self._segment(connection_id)}/actions/{self._segment(action_id)}/run",
            body=self._user_body(user_id, fields, user_feature_id),
        )

    def trigger_test(
        self, *, connection_id: str, trigger_id: str, user_id: str, user_feature_id: str | None = None
    ) -> None:
        """Ask IFTTT to send a test `trigger_subscription/fired` webhook."""
        self.call(
            "POST",
            f"/v2/connections/{self._segment(connection_id)}/triggers/{self._segment(trigger_id)}/test",
            body=self._user_body(user_id, None, user_feature_id),
        )

    def query_perform(
        self,
        *,
        connection_id: str,
        query_id: str,
        user_id: str,
        fields: dict[str, Any] | None = None,
        user_feature_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        includes: list[str] | None = None,
    ) -> QueryPage:
        """One page of a query's results."""
        body = self.call(
            "POST",
            f"/v2/connections/{self._segment(connection_id)}/queries/{self._segment(query_id)}/perform",
            body=self._user_body(user_id, fields, user_feature_id, limit=limit, cursor=cursor, includes=includes),
        )
        return query_page_parse(body)

    def query_perform_all(
        self,
        *,
        connection_id: str,
        query_id: str,
        user_id: str,
        fields: dict[str, Any] | None = None,
        user_feature_id: str | None = None,
        limit: int | None = None,
        max_pages: int = 50,
    ) -> Iterator[Any]:
        """Every row of a query, following the cursor page by page; stops after `limit` rows if given."""
        cursor: str | None = None
        page_fields = fields
        produced = 0
        for _ in range(max_pages):
            page = self.query_perform(
                connection_id=connection_id,
                query_id=query_id,
                user_id=user_id,
                fields=page_fields,
                user_feature_id=user_feature_id,
                limit=None if limit is None else limit - produced,
                cursor=cursor,
            )
            for row in page.data:
                yield row
                produced += 1
                if limit is not None and produced >= limit:
                    return
            if not page.cursor:
                return
            cursor = page.cursor
            if page.next_fields:
                page_fields = {**(fields or {}), **page.next_fields}


def query_page_parse(body: Any) -> QueryPage:
    """IFTTT documents two shapes: the cursor under `next` (its example) or at the top (its table)."""
    if not isinstance(body, dict):
        raise ConnectError("IFTTT answered a query with something other than a JSON object.")
    data = body.get("data")
    rows = data if isinstance(data, list) else []
    following_raw = body.get("next")
    following: dict[str, Any] = following_raw if isinstance(following_raw, dict) else {}
    cursor = following.get("cursor") or body.get("cursor") or None
    next_fields = following.get("fields") if isinstance(following.get("fields"), dict) else None
    if next_fields is None and cursor and isinstance(body.get("fields"), dict):
        next_fields = body["fields"]
    return QueryPage(data=rows, cursor=str(cursor) if cursor else None, next_fields=next_fields, body=body)
