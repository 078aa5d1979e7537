"""Run a connection's runtime script locally, as IFTTT runs it, without calling IFTTT."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from connections.runtime.local import (
    AnswerInvalid,
    answers_parse,
    error_excerpt,
    local_run,
    result_summary,
    script_setup,
)
from connections.sandbox import Outcome, ScriptResult, call_id_valid, sandbox_shutdown
from connections.timezones import DEFAULT_RAILS_ZONE, zone_is_known, zone_resolve


class Command(BaseCommand):
    help = (
        "Run FILE as a connection's runtime script runs on IFTTT (Node.js 12, 10 s), without calling IFTTT: "
        "every runAction and performQuery is recorded and answered (200 with {} for an action, "
        '{"data": []} for a query, or what --answer gives for that id). Exits 0 only when the script succeeds.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        add("file", help="The script, a JavaScript file.")
        add("--trigger", default="", help="Trigger.id (default: <service slug>.device_switched_on).")
        add("--ingredients", default="{}", help="Trigger.ingredients, a JSON object (default: {}).")
        add("--configuration", default="{}", help="Connection.configuration, a JSON object (default: {}).")
        add("--timezone", default=DEFAULT_RAILS_ZONE, help="The user's zone, Rails or IANA (default: %(default)s).")
        add("--now", help="Meta.currentUserTime's instant, ISO-8601, e.g. 2024-07-01T21:30:00Z (default: now).")
        add("--feature", default="", help="Connection.currentFeatureName.")
        add("--user-feature-id", default="", help="Connection.userFeatureId.")
        add("--service-user-id", default="local-user", help="Connection.serviceUserId (default: %(default)s).")
        add(
            "--answer",
            action="append",
            default=[],
            metavar="ID=STATUS[:JSON]",
            help="How calls to ID are answered, e.g. sms.send_me_text=422 or "
            'smarthome.list_devices=200:{"data": [...]}. Repeat it for the same id to answer its calls in turn.',
        )
        add("--json", action="store_true", help='Print one JSON object: {"outcome", "error", "calls", "console"}.')

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            script = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}", returncode=2) from None
        trigger = options["trigger"] or f"{settings.IFTTT_SERVICE_SLUG}.device_switched_on"
        if not call_id_valid(trigger):
            raise CommandError(f"--trigger: “{trigger}” is not a trigger id such as youtube.new_liked_video.", 2)
        if not zone_is_known(options["timezone"]):
            raise CommandError(f"--timezone: “{options['timezone']}” is not a time zone (e.g. Europe/Paris).", 2)
        try:
            answers = answers_parse(options["answer"])
        except AnswerInvalid as exc:
            raise CommandError(f"--answer: {exc}", returncode=2) from None
        setup = script_setup(
            script=script,
            trigger_id=trigger,
            ingredients=_json_object("--ingredients", options["ingredients"]),
            service_user_id=options["service_user_id"],
            feature_name=options["feature"],
            user_feature_id=options["user_feature_id"],
            configuration=_json_object("--configuration", options["configuration"]),
            zone_name=options["timezone"],
            now=_instant(options["now"], options["timezone"]),
        )
        try:
            result = local_run(
                setup=setup,
                answers=answers,
                timeout_s=float(settings.CONNECTIONS_SCRIPT_TIMEOUT),
                memory_mb=settings.CONNECTIONS_SCRIPT_MEMORY_MB,
            )
        finally:
            sandbox_shutdown()
        if options["json"]:
            self.stdout.write(json.dumps(result_summary(result), ensure_ascii=False))
        else:
            self._show(path, script, result)
        if result.outcome != Outcome.SUCCEEDED:
            raise SystemExit(1)

    def _show(self, path: Path, script: str, result: ScriptResult) -> None:
        out = self.stdout.write
        summary = result_summary(result)
        heading = f"{path.name}: {summary['outcome']} ({result.duration_ms:.0f} ms)"
        out(self.style.SUCCESS(heading) if summary["outcome"] == "ok" else self.style.ERROR(heading))
        if result.outcome != Outcome.SUCCEEDED:
            out("")
            out(self.style.ERROR(result.error))
            excerpt = error_excerpt(script, result.error_line, result.error_column)
            if excerpt:
                out(excerpt)
        out("")
        out(f"Calls ({len(result.calls)}), answered here, nothing sent to IFTTT:")
        for number, call in enumerate(result.calls, 1):
            body = json.dumps(call.body, ensure_ascii=False)
            answer = json.dumps(call.response_body, ensure_ascii=False)
            out(f"  {number}. {call.kind} {call.id} {body}")
            out(f"     → {call.status_code} {answer}")
        if not result.calls:
            out("  (none)")
        out("")
        out(f"Console ({len(result.logs)} lines):")
        for line in result.logs:
            out(f"  [{line['level']}] {line['message']}")
        if result.logs_dropped:
            out(f"  … {result.logs_dropped} more lines past the limit were not kept.")
        if not result.logs and not result.logs_dropped:
            out("  (nothing)")


def _json_object(option: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"{option}: not JSON ({exc}).", returncode=2) from None
    if not isinstance(value, dict):
        raise CommandError(f'{option}: must be a JSON object, such as {{"title": "Hello"}}.', returncode=2)
    return value


def _instant(raw: str | None, zone_name: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--now: “{raw}” is not an ISO-8601 date and time.", returncode=2) from None
    # A time without an offset is the user's own wall-clock time.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone_resolve(zone_name))
