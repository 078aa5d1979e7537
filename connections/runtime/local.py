"""Run a script as IFTTT runs it, without calling IFTTT: `script_test` and the admin's "Test run".

Every runAction/performQuery is recorded and answered, by default as a successful call (200 with
`{}` for an action, `{"data": []}` for a query), or with the answer chosen for that id, so an author
can see how the script handles, say, a 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from connections.sandbox import (
    SCRIPT_NAME,
    CallHandler,
    CallReply,
    Outcome,
    ScriptResult,
    ScriptSetup,
    call_id_valid,
    script_execute,
)
from connections.timezones import zone_resolve

# How `script_test --json` names outcomes: what an author cares about.
SUMMARY = {
    Outcome.SUCCEEDED: "ok",
    Outcome.FAILED: "error",
    Outcome.TIMED_OUT: "timeout",
    Outcome.MEMORY_EXCEEDED: "error",
    Outcome.CRASHED: "error",
}


class AnswerInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Answer:
    """What one runAction/performQuery call gets back: an HTTP status and a JSON body."""

    status: int
    body: Any = None

    def reply(self, kind: str) -> CallReply:
        if self.body is not None:
            return CallReply(status_code=self.status, body=self.body)
        return CallReply(status_code=self.status, body=default_body(kind, self.status))


def default_body(kind: str, status: int) -> Any:
    if 200 <= status < 300:
        return {} if kind == "action" else {"data": []}
    # The Connect API's error envelope.
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    code = "invalid_parameters" if status == 422 else phrase.lower().replace(" ", "_").replace("-", "_")
    return {"type": "error", "code": code, "message": phrase, "details": []}


def answer_parse(text: str) -> tuple[str, Answer]:
    """`ID=STATUS[:JSON]`, e.g. `sms.send_me_text=422` or `smarthome.list_devices=200:{"data": [...]}`."""
    call_id, sep, rest = text.strip().partition("=")
    call_id = call_id.strip()
    if not sep:
        raise AnswerInvalid(f"“{text}” is not ID=STATUS[:JSON], e.g. sms.send_me_text=422.")
    if not call_id_valid(call_id):
        raise AnswerInvalid(f"“{call_id}” is not an action or query id such as sms.send_me_text.")
    status_text, _, body_text = rest.partition(":")
    try:
        status = int(status_text.strip())
    except ValueError:
        raise AnswerInvalid(f"“{status_text}” is not an HTTP status such as 200 or 422 (in “{text}”).") from None
    if not 100 <= status <= 599:
        raise AnswerInvalid(f"{status} is not an HTTP status (in “{text}”).")
    body = None
    if body_text.strip():
        try:
            body = json.loads(body_text)
        except ValueError as exc:
            raise AnswerInvalid(f"The body after {call_id}={status}: is not JSON ({exc}).") from None
    return call_id, Answer(status=status, body=body)


def answers_parse(lines: Iterable[str]) -> dict[str, list[Answer]]:
    """Answers by id, in order: repeated answers for one id go to its calls in turn, the last one repeating."""
    answers: dict[str, list[Answer]] = {}
    for line in lines:
        if line.strip():
            call_id, answer = answer_parse(line)
            answers.setdefault(call_id, []).append(answer)
    return answers


def recording_handler(answers: dict[str, list[Answer]]) -> CallHandler:
    """Answers each call from `answers` (or the default success) and sends nothing anywhere."""
    used: dict[str, int] = {}

    def handle(kind: str, call_id: str, body: dict[str, Any]) -> CallReply:
        chosen = answers.get(call_id)
        if not chosen:
            return Answer(status=200).reply(kind)
        index = used.get(call_id, 0)
        used[call_id] = index + 1
        return chosen[min(index, len(chosen) - 1)].reply(kind)

    return handle


def script_setup(
    *,
    script: str,
    trigger_id: str,
    ingredients: dict[str, Any],
    service_user_id: str,
    feature_name: str,
    user_feature_id: str,
    configuration: dict[str, Any],
    zone_name: str,
    now: datetime | None = None,
) -> ScriptSetup:
    """The globals of one run; Meta.currentUserTime is `now` (default: the present) in the user's zone."""
    zone = zone_resolve(zone_name)
    moment = now if now is not None else datetime.now(tz=zone)
    return ScriptSetup(
        script=script,
        trigger_id=trigger_id,
        ingredients=ingredients,
        service_user_id=service_user_id,
        feature_name=feature_name,
        user_feature_id=user_feature_id,
        configuration=configuration,
        now_ms=int(moment.timestamp() * 1000),
        zone=zone.key,
    )


def local_run(
    *, setup: ScriptSetup, answers: dict[str, list[Answer]], timeout_s: float, memory_mb: int
) -> ScriptResult:
    return script_execute(setup=setup, handler=recording_handler(answers), timeout_s=timeout_s, memory_mb=memory_mb)


def result_summary(result: ScriptResult) -> dict[str, Any]:
    """The one object `script_test --json` prints."""
    error = None
    if result.outcome != Outcome.SUCCEEDED:
        error = {"message": result.error, "line": result.error_line, "column": result.error_column}
    return {
        "outcome": SUMMARY.get(result.outcome, "error"),
        "error": error,
        "calls": [
            {
                "kind": call.kind,
                "id": call.id,
                "body": call.body,
                "status_code": call.status_code,
                "response_body": call.response_body,
            }
            for call in result.calls
        ],
        "console": [{"level": line["level"], "message": line["message"]} for line in result.logs],
    }


_POSITION = re.compile(rf"{re.escape(SCRIPT_NAME)}:(\d+):(\d+)")


def error_position(error: str) -> tuple[int, int] | None:
    """The first place in the author's script that a stored error text names."""
    match = _POSITION.search(error)
    return (int(match[1]), int(match[2])) if match else None


def error_excerpt(script: str, line: int | None, column: int | None) -> str:
    """The script's line at an error, with a caret under the column."""
    lines = script.splitlines()
    if line is None or not 0 < line <= len(lines):
        return ""
    prefix = f"{line} | "
    caret = " " * (len(prefix) - 2) + "| " + " " * max(0, (column or 1) - 1) + "^"
    return f"{prefix}{lines[line - 1]}\n{caret}"
