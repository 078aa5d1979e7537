"""Checks, their results, and the assertions they share.

A check is one line of the report ("Triggers › new_thing › returns at least three items"). It passes,
fails with a message and the exchanges it made, or is skipped when the service gave it nothing to test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .client import BudgetExhausted, Exchange, Recorder

Outcome = Literal["passed", "failed", "skipped", "warning", "not run"]
SEPARATOR = " › "


class CheckFailed(Exception):
    pass


class CheckSkipped(Exception):
    pass


class CheckWarning(Exception):
    """Something IFTTT does not document as a requirement: reported, but it does not fail the run."""


@dataclass
class CheckResult:
    path: tuple[str, ...]
    outcome: Outcome
    message: str = ""
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def title(self) -> str:
        return SEPARATOR.join(self.path)

    @property
    def group(self) -> str:
        return SEPARATOR.join(self.path[:-1])

    @property
    def name(self) -> str:
        return self.path[-1]


class Suite:
    """Runs checks one at a time, recording the exchanges each one makes."""

    def __init__(self, recorder: Recorder, on_result: Callable[[CheckResult], None] | None = None) -> None:
        self.recorder = recorder
        self.results: list[CheckResult] = []
        self.on_result = on_result

    @contextmanager
    def check(self, *path: str) -> Iterator[None]:
        exchanges: list[Exchange] = []
        self.recorder.listeners.append(exchanges)
        outcome: Outcome = "passed"
        message = ""
        try:
            yield
        except CheckFailed as exc:
            outcome, message = "failed", str(exc)
        except CheckSkipped as exc:
            outcome, message = "skipped", str(exc)
        except CheckWarning as exc:
            outcome, message = "warning", str(exc)
        except BudgetExhausted as exc:
            outcome, message = "not run", str(exc)
        except Exception as exc:  # a check must never stop the run: report it as that check's failure
            outcome, message = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.recorder.listeners.remove(exchanges)
        result = CheckResult(path=path, outcome=outcome, message=message, exchanges=exchanges)
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def not_run(self, *path: str, reason: str) -> None:
        """Record checks that could not run, so the summary does not read as if they passed."""
        result = CheckResult(path=path, outcome="not run", message=reason)
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == "failed"]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def skip(message: str) -> None:
    raise CheckSkipped(message)


def warn(message: str) -> None:
    """Worth reading before going on, but not wrong."""
    raise CheckWarning(message)


def warn_unless(condition: bool, message: str) -> None:
    """For checks of what IFTTT does not document: a miss is a warning, and the message says so."""
    if not condition:
        raise CheckWarning(f"{message} (a warning: IFTTT does not document this as a requirement)")


def need(value: Any, message: str) -> Any:
    """A result an earlier check should have produced; without it this check cannot run."""
    if value is None:
        raise CheckSkipped(message)
    return value


def reached(exchange: Exchange) -> None:
    if exchange.status is None:
        raise CheckFailed(f"the service did not answer: {exchange.error}")


def expect_status(exchange: Exchange, *expected: int) -> None:
    reached(exchange)
    wanted = " or ".join(str(code) for code in expected)
    expect(exchange.status in expected, f"expected HTTP {wanted}, got {exchange.status}")


def json_body(exchange: Exchange) -> Any:
    try:
        return exchange.json()
    except ValueError as exc:
        raise CheckFailed(str(exc)) from None


def data_of(exchange: Exchange, status: int = 200) -> Any:
    """`data` of a successful answer: HTTP `status`, a JSON object with a top-level `data`."""
    expect_status(exchange, status)
    body = json_body(exchange)
    expect(isinstance(body, dict), f"the body must be a JSON object, not {type(body).__name__}")
    expect("data" in body, 'the body has no top-level "data"')
    return body["data"]


def data_list(exchange: Exchange) -> list[Any]:
    data = data_of(exchange)
    expect(isinstance(data, list), f'"data" must be an array, not {type(data).__name__}')
    return list(data)


def errors_of(exchange: Exchange, *status: int) -> list[dict[str, Any]]:
    """The errors of an error answer, which must be IFTTT's envelope: {"errors": [{"message": …}]}."""
    expect_status(exchange, *status)
    body = json_body(exchange)
    envelope = 'IFTTT\'s error envelope {"errors": [{"message": "…"}]}'
    expect(isinstance(body, dict) and "errors" in body, f"the body is not {envelope}")
    errors = body["errors"]
    expect(isinstance(errors, list) and len(errors) > 0, f'"errors" must be a non-empty array in {envelope}')
    for error in errors:
        expect(isinstance(error, dict), f"each error must be an object, not {type(error).__name__}")
        message = error.get("message")
        expect(isinstance(message, str) and message.strip() != "", 'each error needs a non-empty "message"')
    return list(errors)


_JSON_UTF8 = re.compile(r"^application/json\s*;\s*charset\s*=\s*\"?utf-8\"?\s*$", re.IGNORECASE)


def expect_json_utf8(exchange: Exchange) -> None:
    reached(exchange)
    content_type = exchange.content_type
    expect(
        bool(_JSON_UTF8.match(content_type)),
        f'expected Content-Type "application/json; charset=utf-8", got "{content_type or "(none)"}"',
    )
