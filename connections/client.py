"""A typed client for IFTTT's Connect API (https://connect.ifttt.com, v2).

Every call carries the service key. `user_id` (the user's `public_id`, as user/info gives it to IFTTT)
goes where IFTTT's docs put it: the query string for GET, PUT `user_connection` and `refresh`, the JSON
body for run, perform and test; IFTTT's own sample app puts it in the query string of an action run,
so run, perform and test carry it in both. Failures raise `ConnectError` subclasses that carry IFTTT's
message and details.

Retries follow the one policy (core.retry): jitter, `Retry-After`, a cap, and nothing that may already
have taken effect is sent again. An action run that timed out or answered 5xx (IFTTT's docs: a 502 is
the downstream service failing) may have run, so it is not repeated; reads and replacements are.

Each attempt is one row of the connection's API log (`ConnectApiCall`) and one count in
`connect_calls_total`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict
from urllib.parse import quote, urlencode

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from core import metrics
from core.db import bookkeeping_insert
from core.retry import RetryPolicy, parse_retry_after, should_retry

from .models import ConnectApiCall

logger = logging.getLogger(__name__)

CONNECT_WEB_URL = "https://ifttt.com/connect"
# However long IFTTT's Retry-After or the backoff says, one call never waits longer than this between attempts.
MAX_RETRY_DELAY_SECONDS = 30.0
_CONNECTION_PATH = re.compile(r"^/v2/connections/([^/?]+)")


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
    """5xx: IFTTT (or, for 502, the service behind the action) failed. Retried only when that is safe."""


class ConnectUnreachable(ConnectError):
    """No answer (timeout or connection failure). `maybe_sent`: the request may have reached IFTTT."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


_ERRORS_BY_STATUS: dict[int, type[ConnectError]] = {
    400: ConnectBadRequest,
    401: ConnectUnauthorized,
    403: ConnectForbidden,
    404: ConnectNotFound,
    422: ConnectInvalidParameters,
}


# --- Typed answers --------------------------------------------------------------------------------


@dataclass
class ConnectResponse:
    status_code: int
    body: Any  # the decoded JSON, {} for an empty body


class FieldOption(TypedDict):
    """One choice of a dropdown field (`field_options`)."""

    label: str
    value: str
    group: NotRequired[str]


@dataclass(frozen=True)
class Me:
    """`GET /v2/me`: who the key (and, with `user_id`, the user) authenticates as."""

    authentication_level: str
    service_id: str
    user_login: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UserFeature:
    """One feature of a user's connection; `id` is the `user_feature_id` runs and queries take."""

    id: str
    feature_id: str
    enabled: bool


@dataclass(frozen=True)
class ConnectionDetails:
    """`GET /v2/connections/{id}`: the connection, and with `user_id` the user's state in it."""

    id: str
    name: str
    user_status: str | None  # enabled | disabled | never_enabled | None (no user asked about)
    user_features: tuple[UserFeature, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def user_feature_id(self, feature_id: str | None = None) -> str | None:
        """The user's feature id for `feature_id`, or (without one) the first, which IFTTT uses by default."""
        for feature in self.user_features:
            if feature_id is None or feature.feature_id == feature_id:
                return feature.id
        return None


@dataclass
class QueryPage:
    data: list[Any]
    cursor: str | None
    # The fields IFTTT says to send with the next page's request, if it said any.
    next_fields: dict[str, Any] | None
    body: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def me_parse(body: Any) -> Me:
    data = body if isinstance(body, dict) else {}
    return Me(
        authentication_level=_text(data.get("authentication_level")),
        service_id=_text(data.get("service_id")),
        user_login=_text(data.get("user_login")),
        raw=data,
    )


def connection_details_parse(body: Any) -> ConnectionDetails:
    data = body if isinstance(body, dict) else {}
    user_connection = data.get("user_connection") if isinstance(data.get("user_connection"), dict) else {}
    raw_features = user_connection.get("user_features") if isinstance(user_connection, dict) else None
    features = tuple(
        UserFeature(id=_text(f.get("id")), feature_id=_text(f.get("feature_id")), enabled=bool(f.get("enabled")))
        for f in (raw_features if isinstance(raw_features, list) else [])
        if isinstance(f, dict) and f.get("id")
    )
    status = data.get("user_status")
    return ConnectionDetails(
        id=_text(data.get("id")),
        name=_text(data.get("name")),
        user_status=str(status) if status else None,
        user_features=features,
        raw=data,
    )


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


def connect_url(
    *,
    connection_id: str,
    email: str,
    redirect_uri: str | None = None,
    code: str | None = None,
    skip_config: bool = False,
) -> str:
    """The page where a person enables a connection (`https://ifttt.com/connect/{connection_id}`).

    `code` is a provisional access code (`provisional_access_code_create`), so the person need not
    sign in to this service again. With `skip_config` IFTTT skips its configuration screens: the
    connection stays pending until the backend stores the configuration (PUT user_connection), and
    IFTTT then requires the registered `redirect_uri`.
    """
    if not connection_id:
        raise ValueError("connection_id is required")
    if not email or "@" not in email:
        raise ValueError("IFTTT requires the person's email address on the connect URL")
    if skip_config and not redirect_uri:
        raise ValueError("skip_config needs a redirect_uri (one registered with IFTTT)")
    params: dict[str, str] = {"email": email}
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    if code:
        params["code"] = code
    if skip_config:
        params["skip_config"] = "true"
    return f"{CONNECT_WEB_URL}/{quote(connection_id, safe='')}?{urlencode(params)}"


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"raw": response.text[:2000]}


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (the connection was never made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.ReadTimeout):
        return False
    seen: list[BaseException] = [exc]
    while seen:
        error = seen.pop()
        if isinstance(error, NewConnectionError | ConnectionRefusedError):
            return True
        for more in (getattr(error, "reason", None), error.__cause__, error.__context__, *error.args):
            if isinstance(more, BaseException) and len(seen) < 20:
                seen.append(more)
    return False


def _outcome(status: int | None, *, timed_out: bool) -> str:
    if status is None:
        return "timeout" if timed_out else "unreachable"
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


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
        retries = retries if retries is not None else settings.IFTTT_CONNECT_RETRIES
        backoff = backoff_s if backoff_s is not None else settings.IFTTT_CONNECT_BACKOFF
        self.policy = RetryPolicy(base_seconds=backoff, cap_seconds=MAX_RETRY_DELAY_SECONDS, max_attempts=retries + 1)
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
        idempotent: bool,
    ) -> ConnectResponse:
        """One call, retried as core.retry allows. Returns the last answer, whatever its status.

        `idempotent`: repeating the request cannot do the work twice (a read, a replacement). Otherwise
        only an attempt that certainly did not reach IFTTT, or one IFTTT says it did not process (429,
        503), is repeated. `deadline` (a time.monotonic() value) bounds the whole call, retries included.
        Raises ConnectUnreachable only when no answer came at all.
        """
        url = f"{self.base_url}{path}"
        # One id for every attempt: IFTTT's logs (and ours) show them as one call.
        request_id = uuid.uuid4().hex
        headers = {"IFTTT-Service-Key": self.service_key, "Accept": "application/json", "X-Request-ID": request_id}
        attempts = 0
        while True:
            attempts += 1
            timeout = self.timeout_s
            if deadline is not None:
                timeout = min(timeout, max(0.05, deadline - time.monotonic()))
            started = time.monotonic()
            try:
                response = self.session.request(method, url, params=params, json=body, headers=headers, timeout=timeout)
            except requests.RequestException as exc:
                sent = not _never_sent(exc)
                timed_out = isinstance(exc, requests.Timeout)
                reason = f"no answer within {timeout:g} s" if timed_out else f"{type(exc).__name__}: {exc}"
                self._log(method, path, params, body, request_id, attempts, None, started, reason, timed_out=timed_out)
                if should_retry(status=None, idempotent=idempotent, sent=sent) and self._wait(attempts, deadline, None):
                    continue
                if sent and not idempotent:
                    reason += "; not sent again, since IFTTT may have acted on it"
                raise ConnectUnreachable(
                    f"IFTTT's Connect API did not answer {method} {path} ({reason}) after {attempts} attempt(s).",
                    maybe_sent=sent,
                ) from exc
            decoded = _decode(response)
            status = response.status_code
            error = ""
            if status >= 400:
                error = str(decoded.get("message") or "") if isinstance(decoded, dict) else ""
            self._log(method, path, params, body, request_id, attempts, status, started, error, timed_out=False)
            if status >= 400 and should_retry(status=status, idempotent=idempotent):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if self._wait(attempts, deadline, retry_after):
                    continue
            return ConnectResponse(status, decoded)

    def _wait(self, attempts: int, deadline: float | None, retry_after: float | None) -> bool:
        if not self.policy.may_retry(attempts=attempts):
            return False
        delay = self.policy.delay(attempts=attempts, retry_after=retry_after)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        logger.info("Connect API attempt %d failed; retrying in %.2f s", attempts, delay)
        self.sleep(delay)
        return True

    def _log(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        request_id: str,
        attempt: int,
        status: int | None,
        started: float,
        error: str,
        *,
        timed_out: bool,
    ) -> None:
        duration_ms = (time.monotonic() - started) * 1000
        outcome = _outcome(status, timed_out=timed_out)
        metrics.connect_calls.labels(outcome=outcome).inc()
        match = _CONNECTION_PATH.match(path)
        user_id = (params or {}).get("user_id") or (body or {}).get("user_id") or ""
        try:
            bookkeeping_insert(
                ConnectApiCall(
                    connection_id=match.group(1)[:100] if match else "",
                    method=method,
                    path=path[:500],
                    user_id=str(user_id)[:200],
                    user_feature_id=str((body or {}).get("user_feature_id") or "")[:100],
                    request_id=request_id,
                    attempt=attempt,
                    status=status,
                    outcome=outcome,
                    duration_ms=round(duration_ms, 3),
                    error=error[:2000],
                )
            )
        except Exception:  # the log is for support; a call must not fail because its row could not be written
            logger.warning("Could not record Connect API call %s %s", method, path, exc_info=True)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> Any:
        """A call whose failure raises the matching ConnectError; returns the decoded body."""
        response = self.request(method, path, params=params, body=body, idempotent=idempotent)
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
    def segment(value: str) -> str:
        return quote(str(value), safe="")

    def _connection(self, connection_id: str) -> str:
        return f"/v2/connections/{self.segment(connection_id)}"

    def me(self, *, user_id: str | None = None) -> Me:
        """Who the service key authenticates as; with `user_id`, as that user (service-authenticated with user)."""
        params = {"user_id": user_id} if user_id else None
        return me_parse(self.call("GET", "/v2/me", params=params, idempotent=True))

    def connection_show(self, *, connection_id: str, user_id: str | None = None) -> ConnectionDetails:
        params = {"user_id": user_id} if user_id else None
        body = self.call("GET", self._connection(connection_id), params=params, idempotent=True)
        return connection_details_parse(body)

    def user_feature_id_find(self, *, connection_id: str, user_id: str, feature_id: str | None = None) -> str | None:
        """The user's `user_feature_id` for a feature (the first one without `feature_id`), or None."""
        return self.connection_show(connection_id=connection_id, user_id=user_id).user_feature_id(feature_id)

    def user_connection_update(
        self, *, connection_id: str, user_id: str, user_features: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Replace the user's configuration of the connection (PUT user_connection): safe to repeat."""
        result: dict[str, Any] = self.call(
            "PUT",
            f"{self._connection(connection_id)}/user_connection",
            params={"user_id": user_id},
            body={"user_features": user_features},
            idempotent=True,
        )
        return result

    def user_connection_refresh(self, *, connection_id: str, user_id: str) -> None:
        # IFTTT re-reads the dropdown labels: asking twice changes nothing.
        self.call(
            "POST",
            f"{self._connection(connection_id)}/user_connection/refresh",
            params={"user_id": user_id},
            idempotent=True,
        )

    def field_options_list(
        self, *, connection_id: str, kind: str, type_id: str, user_id: str
    ) -> dict[str, list[FieldOption]]:
        """Options per field of a trigger, query, action or feature: {field: [{label, value, group?}]}."""
        if kind not in ("triggers", "queries", "actions", "features"):
            raise ValueError(f"kind must be triggers, queries, actions or features, not {kind!r}")
        body = self.call(
            "GET",
            f"{self._connection(connection_id)}/{kind}/{self.segment(type_id)}/field_options",
            params={"user_id": user_id},
            idempotent=True,
        )
        options = body.get("options") if isinstance(body, dict) else None
        if not isinstance(options, dict):
            return {}
        typed: dict[str, list[FieldOption]] = {}
        for name, choices in options.items():
            typed[str(name)] = []
            for choice in choices if isinstance(choices, list) else []:
                if not isinstance(choice, dict) or "value" not in choice:
                    continue
                option = FieldOption(label=_text(choice.get("label")), value=_text(choice["value"]))
                if choice.get("group"):
                    option["group"] = _text(choice["group"])
                typed[str(name)].append(option)
        return typed

    def provisional_access_code_create(self, *, oauth_code: str) -> str:
        """Hand IFTTT an OAuth code of ours; it answers a single-use code for the connect URL (48 h)."""
        if not oauth_code:
            raise ValueError("oauth_code is required")
        # Not repeated: the OAuth code it carries can be exchanged only once.
        body = self.call("POST", "/v2/provisional_access_code", body={"oauth_code": oauth_code}, idempotent=False)
        code = body.get("provisional_access_code") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            raise ConnectError("IFTTT answered without a provisional_access_code.")
        return code

    @staticmethod
    def user_body(
        user_id: str, fields: dict[str, Any] | None, user_feature_id: str | None, **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id}
        if user_feature_id:
            body["user_feature_id"] = user_feature_id
        if fields:
            body["fields"] = fields  # overrides the user's stored values for this call only
        body.update({key: value for key, value in extra.items() if value is not None})
        return body

    def action_run_request(
        self, *, connection_id: str, action_id: str, body: dict[str, Any], deadline: float | None = None
    ) -> ConnectResponse:
        """Send an action run as it is (the body as a script wrote it); the answer, whatever its status.

        Never repeated after it may have reached IFTTT: running an action twice is the user's lights
        blinking twice, a message sent twice.
        """
        return self.request(
            "POST",
            f"{self._connection(connection_id)}/actions/{self.segment(action_id)}/run",
            params={"user_id": body["user_id"]},
            body=body,
            deadline=deadline,
            idempotent=False,
        )

    def query_perform_request(
        self, *, connection_id: str, query_id: str, body: dict[str, Any], deadline: float | None = None
    ) -> ConnectResponse:
        """Perform a query with this body; a read, so it is retried like one."""
        return self.request(
            "POST",
            f"{self._connection(connection_id)}/queries/{self.segment(query_id)}/perform",
            params={"user_id": body["user_id"]},
            body=body,
            deadline=deadline,
            idempotent=True,
        )

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
        response = self.action_run_request(
            connection_id=connection_id, action_id=action_id, body=self.user_body(user_id, fields, user_feature_id)
        )
        if response.status_code >= 400:
            raise self.error_for(response, f"running {action_id}")

    def trigger_test(
        self, *, connection_id: str, trigger_id: str, user_id: str, user_feature_id: str | None = None
    ) -> None:
        """Ask IFTTT to send a test `trigger_subscription/fired` webhook (not repeated: it would send two)."""
        self.call(
            "POST",
            f"{self._connection(connection_id)}/triggers/{self.segment(trigger_id)}/test",
            params={"user_id": user_id},
            body=self.user_body(user_id, None, user_feature_id),
            idempotent=False,
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
        body = self.user_body(user_id, fields, user_feature_id, limit=limit, cursor=cursor, includes=includes)
        response = self.query_perform_request(connection_id=connection_id, query_id=query_id, body=body)
        if response.status_code >= 400:
            raise self.error_for(response, f"performing {query_id}")
        return query_page_parse(response.body)

    def query_perform_all(
        self,
        *,
        connection_id: str,
        query_id: str,
        user_id: str,
        fields: dict[str, Any] | None = None,
        user_feature_id: str | None = None,
        limit: int | None = None,
        includes: list[str] | None = None,
        max_pages: int = 50,
    ) -> Iterator[Any]:
        """Every row of a query, following the cursor page by page; stops after `limit` rows if given.

        `includes` (nested ingredients to resolve) is sent with every page, not only the first.
        """
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
                includes=includes,
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
