"""The report of a run: one line per check for people, JSON and JUnit XML for CI."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from typing import Any
from xml.etree import ElementTree as ET

from .suite import CheckResult

MARKS = {"passed": "✓", "failed": "✗", "skipped": "–", "warning": "!", "not run": "·"}


def result_lines(result: CheckResult) -> list[str]:
    """The line for one check; a failure adds its reason and every request and response it made."""
    line = f"{result.title} {MARKS[result.outcome]}"
    if result.outcome == "skipped":
        return [f"{line} (skipped: {result.message})"]
    if result.outcome == "not run":
        return [f"{line} (not run: {result.message})"]
    if result.outcome == "warning":
        return [line, textwrap.indent(result.message, "    ")]
    if result.outcome == "passed":
        return [line]
    lines = [line, textwrap.indent(result.message, "    ")]
    for exchange in result.exchanges:
        lines.append(textwrap.indent(exchange.describe(), "    "))
    return lines


def summary(results: list[CheckResult]) -> dict[str, int]:
    counts = Counter(r.outcome for r in results)
    return {
        "passed": counts["passed"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
        "warnings": counts["warning"],
        "not_run": counts["not run"],
    }


def summary_line(results: list[CheckResult]) -> str:
    counts = summary(results)
    text = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if counts["warnings"]:
        text += f", {counts['warnings']} warning(s)"
    if counts["not_run"]:
        text += f", {counts['not_run']} not run"
    return text


def as_json(results: list[CheckResult], *, target: str) -> str:
    body: dict[str, Any] = {
        "target": target,
        **summary(results),
        "checks": [
            {
                "check": r.title,
                "group": r.group,
                "name": r.name,
                "outcome": r.outcome,
                "message": r.message,
                "exchanges": [e.as_dict() for e in r.exchanges] if r.outcome == "failed" else [],
            }
            for r in results
        ],
    }
    return json.dumps(body, indent=2, ensure_ascii=False)


def as_junit(results: list[CheckResult], *, target: str, name: str = "ifttt_check") -> bytes:
    counts = summary(results)
    suites = ET.Element("testsuites", name=name)
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"IFTTT endpoint checks against {target}",
        tests=str(len(results)),
        failures=str(counts["failed"]),
        skipped=str(counts["skipped"]),
        errors="0",
    )
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=result.group.replace(" › ", "."), name=result.name)
        if result.outcome == "failed":
            failure = ET.SubElement(case, "failure", message=result.message)
            failure.text = "\n\n".join(e.describe() for e in result.exchanges)
        elif result.outcome in ("skipped", "not run"):
            ET.SubElement(case, "skipped", message=result.message)
        elif result.outcome == "warning":
            ET.SubElement(case, "system-out").text = f"warning: {result.message}"
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)
