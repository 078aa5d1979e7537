"""IFTTT's endpoint tests, run against any IFTTT service over HTTP.

Everything comes from the service's own answers: `test/setup` names the triggers, actions and queries
and gives their samples, so nothing here knows this project's catalog. The checks follow the protocol
notes (IFTTT's Service API reference and testing docs, and what IFTTT's own sample services do).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from .client import Exchange, Recorder
from .suite import (
    Suite,
    data_list,
    data_of,
    errors_of,
    expect,
    expect_json_utf8,
    expect_status,
    json_body,
    need,
    skip,
    warn_unless,
)

API = "/ifttt/v1"
DEFAULT_LIMIT = 50
SAMPLE_KINDS = ("triggers", "triggerFieldValidations", "actions", "actionRecordSkipping", "queries")
# A cursor walk stops here (a warning: the history is just long); the run's time budget bounds it too.
MAX_PAGES = 400
USER = {"timezone": "America/Los_Angeles"}
SOURCE = {"id": "localifttt", "url": "https://ifttt.com/applets/localifttt"}


@dataclass(frozen=True)
class Target:
    base_url: str
    service_key: str


def _slug(value: str) -> str:
    return quote(value, safe="")


def option_problems(options: Any) -> list[str]:
    """What is wrong with a dynamic options answer: `[{label, value} | {label, values: […]}]`."""
    if not isinstance(options, list):
        return [f'"data" must be an array of options, not {type(options).__name__}']
    problems: list[str] = []
    for index, option in enumerate(options):
        where = f"option {index + 1}"
        if not isinstance(option, dict):
            problems.append(f"{where} must be an object")
            continue
        if not isinstance(option.get("label"), str) or not option["label"]:
            problems.append(f'{where} needs a non-empty text "label"')
        if "values" in option:
            children = option["values"]
            if not isinstance(children, list):
                problems.append(f'{where} ("{option.get("label")}"): "values" must be an array')
                continue
            for child_index, child in enumerate(children):
                child_where = f"{where}, choice {child_index + 1}"
                if not isinstance(child, dict):
                    problems.append(f"{child_where} must be an object")
                elif "values" in child:
                    problems.append(f"{child_where}: groups may only be one level deep")
                elif not isinstance(child.get("label"), str) or not isinstance(child.get("value"), str):
                    problems.append(f'{child_where} needs a text "label" and a text "value"')
        elif not isinstance(option.get("value"), str):
            problems.append(f'{where} needs a text "value" (or "values" for a group)')
    return problems


def option_values(options: list[Any]) -> set[str]:
    values: set[str] = set()
    for option in options:
        if isinstance(option, dict):
            for child in option.get("values") or [option]:
                if isinstance(child, dict) and isinstance(child.get("value"), str):
                    values.add(child["value"])
    return values


def _timestamp(item: Any) -> Any:
    meta = item.get("meta") if isinstance(item, dict) else None
    return meta.get("timestamp") if isinstance(meta, dict) else None


def _ids(items: list[Any]) -> list[Any]:
    return [item.get("meta", {}).get("id") if isinstance(item, dict) else None for item in items]


class EndpointChecks:
    """The endpoint tests: status, test/setup, user/info, then every sample test/setup returns."""

    def __init__(self, suite: Suite, recorder: Recorder, target: Target) -> None:
        self.suite = suite
        self.http = recorder
        self.target = target
        self.token: str | None = None
        self.samples: dict[str, Any] = {}

    # --- requests ---------------------------------------------------------------------------------
    def user_headers(self, *, bad: bool = False) -> dict[str, str]:
        """A user's call carries the bearer token (OAuth services) or else the service key."""
        headers = {"IFTTT-Test-Mode": "1"}
        if self.token is not None:
            headers["Authorization"] = "Bearer " + ("localifttt-invalid-" + secrets.token_hex(8) if bad else self.token)
        else:
            headers["IFTTT-Service-Key"] = "INVALID" if bad else self.target.service_key
        return headers

    def post(
        self, path: str, body: Any = None, *, bad_auth: bool = False, headers: dict[str, str] | None = None
    ) -> Exchange:
        sent = {**self.user_headers(bad=bad_auth), **(headers or {})}
        return self.http.send("POST", API + path, headers=sent, json_body=body or {})

    def post_raw(self, path: str, raw: str) -> Exchange:
        return self.http.send("POST", API + path, headers=self.user_headers(), raw_body=raw)

    @property
    def bad_auth_name(self) -> str:
        which = "access token" if self.token is not None else "service key"
        return f"returns 401 with a bad {which}"

    def shown(self, exchange: Exchange | None) -> None:
        """Attach an earlier answer to the running check, so its failure shows what it judged."""
        if exchange is not None and self.http.listeners:
            self.http.listeners[-1].append(exchange)

    def key_headers(self, key: str | None, header: str = "IFTTT-Service-Key") -> dict[str, str]:
        return {header: key} if key is not None else {}

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        self.check_status()
        if not self.check_test_setup():
            self.suite.not_run(
                "Triggers, actions and queries",
                "every check of the samples",
                reason="test/setup gave no samples, so none of the triggers, actions and queries could be checked",
            )
            return
        if self.token is not None:
            self.check_user_info()
        triggers = self.samples.get("triggers") or {}
        validations = self.samples.get("triggerFieldValidations") or {}
        for slug, fields in triggers.items():
            self.check_trigger(slug, fields, validations.get(slug) or {})
        for slug in validations:
            if slug not in triggers:
                self.check_trigger(slug, {}, validations[slug])
        actions = self.samples.get("actions") or {}
        for slug, fields in actions.items():
            self.check_action(slug, fields)
        for slug, fields in (self.samples.get("actionRecordSkipping") or {}).items():
            self.check_action_skip(slug, fields)
        for slug, fields in (self.samples.get("queries") or {}).items():
            self.check_query(slug, fields)
        self.check_unknown_endpoints()
        self.check_malformed_requests()

    # --- status and test/setup --------------------------------------------------------------------
    def check_status(self) -> None:
        group = ("Status",)
        key = self.target.service_key
        with self.suite.check(*group, "returns 200 with the service key"):
            expect_status(self.http.send("GET", f"{API}/status", headers=self.key_headers(key)), 200)
        with self.suite.check(*group, "returns 401 without a service key"):
            errors_of(self.http.send("GET", f"{API}/status"), 401)
        with self.suite.check(*group, "returns 401 with a wrong service key"):
            errors_of(self.http.send("GET", f"{API}/status", headers=self.key_headers("INVALID")), 401)
        with self.suite.check(*group, "accepts the legacy IFTTT-Channel-Key header"):
            headers = self.key_headers(key, "IFTTT-Channel-Key")
            answer = self.http.send("GET", f"{API}/status", headers=headers)
            warn_unless(answer.status == 200, f"the legacy header got HTTP {answer.status}; older IFTTT calls send it")

    def check_test_setup(self) -> bool:
        group = ("Test setup",)
        with self.suite.check(*group, "returns 401 with a wrong service key"):
            errors_of(self.http.send("POST", f"{API}/test/setup", headers=self.key_headers("INVALID")), 401)
        answer: Exchange | None = None
        with self.suite.check(*group, "returns an access token and samples"):
            answer = self.http.send("POST", f"{API}/test/setup", headers=self.key_headers(self.target.service_key))
            data = data_of(answer)
            expect(isinstance(data, dict), '"data" must be an object')
            token = data.get("accessToken")
            expect(token is None or (isinstance(token, str) and token != ""), '"accessToken" must be text')
            samples = data.get("samples")
            expect(isinstance(samples, dict), '"data.samples" must be an object')
            for kind in SAMPLE_KINDS:
                table = samples.get(kind, {})
                expect(isinstance(table, dict), f'"samples.{kind}" must be an object keyed by slug')
                for slug, values in table.items():
                    expect(isinstance(values, dict), f'"samples.{kind}.{slug}" must be an object of field values')
            expect(
                any(samples.get(kind) for kind in ("triggers", "actions", "queries")),
                "the samples name no trigger, action or query, so there is nothing to test",
            )
            self.token = token
            self.samples = samples
        if answer is not None and answer.status == 200:
            with self.suite.check(*group, "answers application/json; charset=utf-8"):
                self.shown(answer)
                expect_json_utf8(answer)
        return bool(self.samples)

    def check_user_info(self) -> None:
        group = ("User info",)
        answer: Exchange | None = None
        with self.suite.check(*group, "returns the user's id and name"):
            answer = self.http.send("GET", f"{API}/user/info", headers=self.user_headers())
            data = data_of(answer)
            expect(isinstance(data, dict), '"data" must be an object')
            user_id = data.get("id")
            expect(isinstance(user_id, str) and 0 < len(user_id) <= 200, '"id" must be text of 1 to 200 characters')
            expect(isinstance(data.get("name"), str) and data["name"] != "", '"name" must be non-empty text')
            url = data.get("url")
            expect(url is None or (isinstance(url, str) and url.startswith("http")), '"url" must be a link')
        with self.suite.check(*group, "answers application/json; charset=utf-8"):
            self.shown(answer)
            expect_json_utf8(need(answer, "user/info did not answer"))
        with self.suite.check(*group, self.bad_auth_name):
            errors_of(self.http.send("GET", f"{API}/user/info", headers=self.user_headers(bad=True)), 401)

    # --- triggers ---------------------------------------------------------------------------------
    def trigger_body(self, fields: dict[str, Any], identity: str, **extra: Any) -> dict[str, Any]:
        return {"trigger_identity": identity, "triggerFields": fields, "user": USER, "ifttt_source": SOURCE, **extra}

    def check_trigger(self, slug: str, fields: dict[str, Any], validations: dict[str, Any]) -> None:
        group = ("Triggers", slug)
        path = f"/triggers/{_slug(slug)}"
        identity = secrets.token_hex(20)
        body = self.trigger_body(fields, identity)
        first: Exchange | None = None
        items: list[Any] | None = None

        with self.suite.check(*group, "returns at least three items"):
            first = self.post(path, body)
            items = data_list(first)
            expect(len(items) >= 3, f"expected at least three items with the sample fields, got {len(items)}")
        with self.suite.check(*group, "answers application/json; charset=utf-8"):
            self.shown(first)
            expect_json_utf8(need(first, "the trigger did not answer"))
        with self.suite.check(*group, "returns at most 50 items by default"):
            self.shown(first)
            got = need(items, "the first poll failed")
            expect(len(got) <= DEFAULT_LIMIT, f"without a limit IFTTT expects at most 50 items, got {len(got)}")
        with self.suite.check(*group, "items have meta.id (text) and meta.timestamp (integer seconds)"):
            self.shown(first)
            for index, item in enumerate(need(items, "the first poll failed")):
                where = f"item {index + 1}"
                expect(isinstance(item, dict), f"{where} must be an object")
                meta = item.get("meta")
                expect(isinstance(meta, dict), f'{where} has no "meta" object')
                expect(isinstance(meta.get("id"), str) and meta["id"] != "", f'{where}: "meta.id" must be text')
                stamp = meta.get("timestamp")
                expect(
                    isinstance(stamp, int) and not isinstance(stamp, bool),
                    f'{where}: "meta.timestamp" must be an integer, got {stamp!r}',
                )
                expect(0 < stamp < 10**11, f'{where}: "meta.timestamp" {stamp} is not Unix time in seconds')
        with self.suite.check(*group, "items are newest first"):
            self.shown(first)
            stamps = [_timestamp(item) for item in need(items, "the first poll failed")]
            need(None if any(not isinstance(s, int) for s in stamps) else stamps, "timestamps are not integers")
            expect(
                all(a >= b for a, b in pairwise(stamps)),
                f"meta.timestamp must not increase down the list; got {stamps}",
            )
        with self.suite.check(*group, "item ids are unique"):
            self.shown(first)
            ids = _ids(need(items, "the first poll failed"))
            duplicates = sorted({str(i) for i in ids if ids.count(i) > 1})
            expect(not duplicates, f"meta.id repeats within one answer: {', '.join(duplicates)}")

        realtime: list[Any] | None = None
        second: Exchange | None = None
        with self.suite.check(*group, "answers a Realtime poll (X-IFTTT-Realtime: 1)"):
            second = self.post(path, body, headers={"X-IFTTT-Realtime": "1"})
            realtime = data_list(second)
        with self.suite.check(*group, "ids are stable across polls"):
            self.shown(first)
            self.shown(second)
            self._expect_same_ids(need(items, "the first poll failed"), need(realtime, "the second poll failed"))
        with self.suite.check(*group, "with extra data"):
            extra = {f"localifttt_{secrets.token_hex(4)}": secrets.token_hex(8)}
            again = data_list(self.post(path, {**body, **extra}))
            expect(
                len(again) == len(need(items, "the first poll failed")),
                f"an unknown key must be ignored; the answer changed from {len(items or [])} to {len(again)} items",
            )
        self._check_limits(group, path, body, items)
        if fields:
            with self.suite.check(*group, "returns 400 when triggerFields is missing"):
                errors_of(self.post(path, {"trigger_identity": identity, "user": USER}), 400)
        with self.suite.check(*group, self.bad_auth_name):
            errors_of(self.post(path, body, bad_auth=True), 401)
        for field_slug, value in fields.items():
            self._check_options(("Triggers", slug, f"field {field_slug}"), f"{path}/fields/{_slug(field_slug)}", value)
        for field_slug, pair in validations.items():
            self._check_validation(("Triggers", slug, f"field {field_slug}"), path, field_slug, pair)
        if validations:
            self._check_contextual_validation(group, path, fields, validations)
        with self.suite.check(*group, "deletes the trigger identity"):
            answer = self.http.send(
                "DELETE", f"{API}{path}/trigger_identity/{identity}", headers=self.user_headers(), json_body={}
            )
            expect_status(answer, 200, 202, 204)

    def _expect_same_ids(self, first: list[Any], second: list[Any]) -> None:
        """An event keeps its meta.id: IFTTT fires an Applet again for every id it has not seen.

        Judged by ids alone: an id of the second poll that the first lacked must be a newer event (its
        timestamp after the first poll's newest), not an old one renamed. Events may share a timestamp
        and content (50 identical events in one second are valid), so those cannot pair events up.
        """
        if not first:
            return
        before = set(_ids(first))
        expect(
            bool(before & set(_ids(second))),
            "no event of the first poll came back with the same meta.id, so IFTTT would run the Applet again for each",
        )
        stamps = [_timestamp(item) for item in first]
        newest = max((stamp for stamp in stamps if isinstance(stamp, int)), default=0)
        renamed = [
            (_ids([item])[0], stamp)
            for item in second
            if _ids([item])[0] not in before and isinstance(stamp := _timestamp(item), int) and stamp < newest
        ]
        if renamed:
            example, stamp = renamed[0]
            expect(
                False,
                f"{len(renamed)} event(s) of the second poll have ids the first poll lacked although they are older "
                f"than its newest (e.g. {example!r} at {stamp}), so IFTTT would run the Applet again for each",
            )

    def _check_limits(self, group: tuple[str, ...], path: str, body: dict[str, Any], items: list[Any] | None) -> None:
        with self.suite.check(*group, "returns no items with limit 0"):
            got = data_list(self.post(path, {**body, "limit": 0}))
            expect(got == [], f"limit 0 must return an empty array, got {len(got)} items")
        for limit in (1, 2):
            with self.suite.check(*group, f"returns the newest {limit} with limit {limit}"):
                got = data_list(self.post(path, {**body, "limit": limit}))
                full = need(items, "the first poll failed")
                expected = min(limit, len(full))
                expect(len(got) == expected, f"limit {limit} must return {expected} item(s), got {len(got)}")
                expect(
                    _ids(got) == _ids(full[:limit]),
                    f"limit {limit} must return the newest items, ids {_ids(full[:limit])}, got {_ids(got)}",
                )

    def _check_options(self, group: tuple[str, ...], path: str, sample_value: Any) -> None:
        """A field's dynamic options, if it has them. A 404 means a text field: nothing to check."""
        with self.suite.check(*group, "options are well formed and include the sample"):
            answer = self.post(f"{path}/options", {"user": USER})
            if answer.status == 404:
                skip("no options endpoint (a text field)")
            options = data_of(answer)
            problems = option_problems(options)
            expect(not problems, "; ".join(problems[:5]))
            if isinstance(sample_value, str):
                warn_unless(
                    sample_value in option_values(options),
                    f"the sample value {sample_value!r} is not among the options a user can pick",
                )

    def _check_validation(self, group: tuple[str, ...], path: str, field_slug: str, pair: Any) -> None:
        url = f"{path}/fields/{_slug(field_slug)}/validate"
        if not isinstance(pair, dict):
            with self.suite.check(*group, "validation samples"):
                expect(False, 'triggerFieldValidations needs {"valid": …, "invalid": …} for each field')
            return
        for key, expected in (("valid", True), ("invalid", False)):
            if key not in pair:
                continue
            name = "accepts the valid sample" if expected else "rejects the invalid sample with a message"
            with self.suite.check(*group, name):
                data = data_of(self.post(url, {"value": pair[key], "user": USER}))
                expect(isinstance(data, dict), '"data" must be an object with "valid"')
                expect(data.get("valid") is expected, f'expected "valid": {str(expected).lower()} for {pair[key]!r}')
                message = data.get("message")
                expect(message is None or isinstance(message, str), '"message" must be text')
                if not expected:
                    expect(bool(message), 'an invalid value needs a "message" telling the user what is wrong')

    def _check_contextual_validation(
        self, group: tuple[str, ...], path: str, fields: dict[str, Any], validations: dict[str, Any]
    ) -> None:
        """All fields at once. IFTTT's docs and its OpenAPI file name different paths; either will do."""
        pairs = {f: v for f, v in validations.items() if isinstance(v, dict)}
        valid = {**fields, **{f: v.get("valid") for f, v in pairs.items() if "valid" in v}}
        url: str | None = None
        answer: Exchange | None = None
        with self.suite.check(*group, "contextual validation accepts the valid samples"):
            for candidate in (f"{path}/validate", f"{path}/fields/validate"):
                answer = self.post(candidate, {"values": valid, "user": USER})
                if answer.status != 404:
                    url = candidate
                    break
            if url is None:
                skip("no contextual validation endpoint (IFTTT enables it per trigger)")
            data = data_of(need(answer, "no answer"))
            expect(isinstance(data, dict), '"data" must be an object keyed by field')
            for field_slug in pairs:
                verdict = data.get(field_slug)
                expect(isinstance(verdict, dict), f'"data.{field_slug}" must be an object with "valid"')
                expect(verdict.get("valid") is True, f'expected "{field_slug}" to be valid')
        for field_slug, pair in pairs.items():
            if "invalid" not in pair:
                continue
            with self.suite.check(*group, f"contextual validation rejects the invalid {field_slug}"):
                data = data_of(
                    self.post(need(url, "no contextual validation"), {"values": {**valid, field_slug: pair["invalid"]}})
                )
                verdict = data.get(field_slug) if isinstance(data, dict) else None
                expect(isinstance(verdict, dict), f'"data.{field_slug}" must be an object with "valid"')
                assert isinstance(verdict, dict)
                expect(verdict.get("valid") is False, f'expected "{field_slug}" to be invalid')
                expect(isinstance(verdict.get("message"), str), f'"data.{field_slug}.message" must explain why')

    # --- actions ----------------------------------------------------------------------------------
    def action_body(self, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"actionFields": fields, "user": USER, "ifttt_source": SOURCE, **extra}

    def check_action(self, slug: str, fields: dict[str, Any]) -> None:
        group = ("Actions", slug)
        path = f"/actions/{_slug(slug)}"
        answer: Exchange | None = None
        with self.suite.check(*group, "returns one record with an id"):
            answer = self.post(path, self.action_body(fields))
            self._expect_action_record(answer)
        with self.suite.check(*group, "answers application/json; charset=utf-8"):
            self.shown(answer)
            expect_json_utf8(need(answer, "the action did not answer"))
        with self.suite.check(*group, "with extra data"):
            extra = {f"localifttt_{secrets.token_hex(4)}": secrets.token_hex(8)}
            self._expect_action_record(self.post(path, self.action_body(fields, **extra)))
        with self.suite.check(*group, "returns 400 when actionFields is missing"):
            errors = errors_of(self.post(path, {"user": USER}), 400)
            expect(
                all(e.get("status") != "SKIP" for e in errors),
                "a request-level problem must not be a SKIP (SKIP is for events that can never succeed)",
            )
        with self.suite.check(*group, self.bad_auth_name):
            errors_of(self.post(path, self.action_body(fields), bad_auth=True), 401)
        for field_slug, value in fields.items():
            self._check_options(("Actions", slug, f"field {field_slug}"), f"{path}/fields/{_slug(field_slug)}", value)

    def _expect_action_record(self, answer: Exchange) -> None:
        records = data_list(answer)
        expect(len(records) == 1, f'"data" must hold exactly one record, got {len(records)}')
        record = records[0]
        expect(isinstance(record, dict), "the record must be an object")
        expect(isinstance(record.get("id"), str) and record["id"] != "", 'the record needs a text "id"')
        url = record.get("url")
        expect(url is None or (isinstance(url, str) and url.startswith("http")), 'the record\'s "url" must be a link')

    def check_action_skip(self, slug: str, fields: dict[str, Any]) -> None:
        with self.suite.check("Actions", slug, "skips the actionRecordSkipping sample (400, status SKIP)"):
            errors = errors_of(self.post(f"/actions/{_slug(slug)}", self.action_body(fields)), 400)
            expect(
                errors[0].get("status") == "SKIP",
                f'the first error must have "status": "SKIP", got {errors[0].get("status")!r}',
            )

    # --- queries ----------------------------------------------------------------------------------
    def query_body(self, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"queryFields": fields, "user": USER, "ifttt_source": SOURCE, **extra}

    def _page(self, answer: Exchange) -> tuple[list[Any], str | None]:
        rows = data_list(answer)
        cursor = json_body(answer).get("cursor")
        expect(cursor is None or (isinstance(cursor, str) and cursor != ""), '"cursor" must be non-empty text')
        return rows, cursor

    def check_query(self, slug: str, fields: dict[str, Any]) -> None:
        group = ("Queries", slug)
        path = f"/queries/{_slug(slug)}"
        first: Exchange | None = None
        rows: list[Any] | None = None
        cursor: str | None = None
        with self.suite.check(*group, "returns rows with the sample fields"):
            first = self.post(path, self.query_body(fields))
            rows, cursor = self._page(first)
            expect(all(isinstance(row, dict) for row in rows), "each row must be an object of ingredients")
        with self.suite.check(*group, "answers application/json; charset=utf-8"):
            self.shown(first)
            expect_json_utf8(need(first, "the query did not answer"))
        with self.suite.check(*group, "returns at most 50 rows by default"):
            self.shown(first)
            got = need(rows, "the query failed")
            expect(len(got) <= DEFAULT_LIMIT, f"without a limit IFTTT expects at most 50 rows, got {len(got)}")
        with self.suite.check(*group, "with extra data"):
            extra = {f"localifttt_{secrets.token_hex(4)}": secrets.token_hex(8)}
            again, _ = self._page(self.post(path, self.query_body(fields, **extra)))
            expect(len(again) == len(need(rows, "the query failed")), "an unknown key must be ignored")
        with self.suite.check(*group, "returns one row and a cursor with limit 1"):
            full = need(rows, "the query failed")
            if len(full) < 2 and cursor is None:
                skip(f"the sample gives {len(full)} row(s); a sample with two or more rows tests paging")
            page, next_cursor = self._page(self.post(path, self.query_body(fields, limit=1)))
            expect(len(page) == 1, f"limit 1 must return one row, got {len(page)}")
            expect(next_cursor is not None, "more rows remain, so the answer must carry a cursor")
        with self.suite.check(*group, "walks the cursor to a last page without a cursor"):
            self._walk(path, fields, need(rows, "the query failed"), complete=cursor is None)
        with self.suite.check(*group, "returns 400 for a forged cursor"):
            forged = "localifttt-forged-" + secrets.token_hex(12)
            answer = self.post(path, self.query_body(fields, cursor=forged))
            expect(answer.status is not None, f"the service did not answer: {answer.error}")
            warn_unless(answer.status == 400, f"a cursor the service never issued got HTTP {answer.status}, not 400")
        if fields:
            with self.suite.check(*group, "returns 400 when queryFields is missing"):
                errors_of(self.post(path, {"user": USER}), 400)
        with self.suite.check(*group, self.bad_auth_name):
            errors_of(self.post(path, self.query_body(fields), bad_auth=True), 401)
        for field_slug, value in fields.items():
            self._check_options(("Queries", slug, f"field {field_slug}"), f"{path}/fields/{_slug(field_slug)}", value)

    def _walk(self, path: str, fields: dict[str, Any], rows: list[Any], *, complete: bool) -> None:
        """Page through with a small limit; when the first answer held every row, the pages must add up to it."""
        size = max(1, math.ceil(len(rows) / 5)) if complete else DEFAULT_LIMIT
        walked: list[Any] = []
        cursor: str | None = None
        cursors: set[str] = set()
        for page_number in range(1, MAX_PAGES + 1):
            extra: dict[str, Any] = {"limit": size}
            if cursor is not None:
                extra["cursor"] = cursor
            page, cursor = self._page(self.post(path, self.query_body(fields, **extra)))
            expect(len(page) <= size, f"page {page_number} has {len(page)} rows, more than the limit {size}")
            walked.extend(page)
            if cursor is None:
                break
            expect(len(page) > 0, f"page {page_number} is empty but still carries a cursor")
            expect(cursor not in cursors, f"page {page_number} returns a cursor it returned before: the walk loops")
            cursors.add(cursor)
        else:
            warn_unless(
                False,
                f"the walk stopped after {MAX_PAGES} pages of {size} rows ({len(walked)} rows) without reaching "
                "the last page: the history is long, and no page so far was wrong",
            )
        if complete:
            expect(
                walked == rows,
                f"the pages ({len(walked)} rows) do not add up to the unpaged answer ({len(rows)} rows): "
                "rows are repeated, missing or out of order",
            )

    # --- requests IFTTT should refuse -------------------------------------------------------------
    def check_unknown_endpoints(self) -> None:
        group = ("Unknown endpoints",)
        unknown = "localifttt_no_such_" + secrets.token_hex(3)
        bodies: tuple[tuple[str, str, dict[str, Any]], ...] = (
            ("trigger", "triggers", {"triggerFields": {}}),
            ("action", "actions", {"actionFields": {}}),
            ("query", "queries", {"queryFields": {}}),
        )
        for kind, plural, body in bodies:
            with self.suite.check(*group, f"an unknown {kind} returns 404"):
                errors_of(self.post(f"/{plural}/{unknown}", body), 404)
        triggers = self.samples.get("triggers") or {}
        if triggers:
            slug = next(iter(triggers))
            with self.suite.check(*group, "options of an unknown field return 404"):
                errors_of(self.post(f"/triggers/{_slug(slug)}/fields/{unknown}/options", {}), 404)

    def check_malformed_requests(self) -> None:
        group = ("Malformed requests",)
        broken = '{"triggerFields": {"oops": '
        for plural, kind in (("triggers", "a trigger"), ("actions", "an action"), ("queries", "a query")):
            table = self.samples.get(plural) or {}
            if not table:
                continue
            slug = next(iter(table))
            with self.suite.check(*group, f"malformed JSON to {kind} returns 400"):
                errors_of(self.post_raw(f"/{plural}/{_slug(slug)}", broken), 400)
        triggers = {s: f for s, f in (self.samples.get("triggers") or {}).items() if f}
        if triggers:
            slug = next(iter(triggers))
            path = f"/triggers/{_slug(slug)}"
            with self.suite.check(*group, "triggerFields that is not an object returns 400"):
                errors_of(self.post(path, {"triggerFields": "not an object", "user": USER}), 400)
