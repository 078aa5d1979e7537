"""A pre-submission review of the service, as IFTTT's reviewers read it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from localifttt.copytext import Identity
from localifttt.management.commands.ifttt_check import Command as CheckCommand
from localifttt.report import as_json, as_junit, result_lines, summary, summary_line
from localifttt.review import ReviewTarget, blocking, run_review
from localifttt.suite import CheckResult
from protocol.recipes import RECIPES
from protocol.registry import registry


class Command(CheckCommand):
    help = (
        "Review the service before submitting it to IFTTT: the endpoint and authentication tests, the "
        "authorization page, the support email, the service copy, the logo and the Applet recipes. Each "
        "finding comes with its reason and its fix. Exits non-zero when anything blocks submission."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--logo", help="The SVG logo to check (default: settings.SERVICE_LOGO).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"] or options["password"]:
            options["auth"] = True
        auth = self._auth_options(options)
        as_lines = not options["json"]
        started = time.monotonic()

        def show(result: CheckResult) -> None:
            if not as_lines:
                return
            lines = result_lines(result)
            style = {"failed": self.style.ERROR, "passed": self.style.SUCCESS}.get(result.outcome, self.style.WARNING)
            self.stdout.write(style(lines[0]))
            for line in lines[1:]:
                self.stdout.write(line)

        with self._target(options["url"], options["port"], as_lines) as base_url:
            target = ReviewTarget(
                base_url=base_url,
                service_key=options["service_key"] or settings.IFTTT_SERVICE_KEY,
                auth=auth,
                identity=Identity.from_settings(),
                registry=registry,
                recipes=RECIPES,
                logo=Path(options["logo"] or settings.SERVICE_LOGO),
                timeout=options["timeout"],
                budget=options["budget"] or None,
            )
            results = run_review(target, on_result=show)
        where = options["url"] or "this project (in-process)"
        if options["junit"]:
            Path(options["junit"]).write_bytes(as_junit(results, target=where, name="ifttt_review"))
        if options["json"]:
            self.stdout.write(as_json(results, target=where))
        took = f"{summary_line(results)} in {time.monotonic() - started:.1f} s"
        if blocking(results):
            raise CommandError(
                f"Not ready to submit: {took}. Each failure above says why and how to fix it; run the review again."
            )
        if as_lines:
            warnings = summary(results)["warnings"]
            note = f" Read the {warnings} warning(s) above before you submit." if warnings else ""
            self.stdout.write(self.style.SUCCESS(f"Ready to submit to IFTTT: {took}.{note}"))
