"""IFTTT's endpoint and authentication tests, run locally against this service or any other."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from localifttt.inprocess import service_in_thread
from localifttt.report import as_json, as_junit, result_lines, summary, summary_line
from localifttt.runner import AuthOptions, run_checks
from localifttt.suite import CheckResult


class Command(BaseCommand):
    help = (
        "Run IFTTT's endpoint tests (and with --auth its authentication test) against an IFTTT service. "
        "Without --url it serves this project in-process on a free port. Exits non-zero on any failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        add("--url", help="The service's API URL prefix, e.g. https://api.example.com (default: this project).")
        add("--port", type=int, default=0, help="Without --url: the port to serve this project on (default: any free).")
        add("--service-key", help="The IFTTT-Service-Key (default: settings.IFTTT_SERVICE_KEY).")
        add("--auth", action="store_true", help="Also run the authentication test (give --user and --password).")
        add("--user", help="A user who can sign in on the service's authorization page.")
        add("--password", help="That user's password.")
        add("--client-id", help="IFTTT's OAuth client id (default: settings.IFTTT_CLIENT_ID).")
        add("--client-secret", help="IFTTT's OAuth client secret (default: settings.IFTTT_CLIENT_SECRET).")
        add("--service-slug", help="The slug in IFTTT's redirect URI (default: settings.IFTTT_SERVICE_SLUG).")
        add("--authorize-url", default="/oauth/authorize/", help="Authorization URL or path (default: %(default)s).")
        add("--token-url", default="/oauth/token/", help="Token URL or path (default: %(default)s).")
        add("--revoke-url", default="/oauth/revoke_token/", help="RFC 7009 revocation URL or path (%(default)s).")
        add("--timeout", type=float, default=10.0, help="Seconds to wait for each answer (default: %(default)s).")
        add(
            "--budget",
            type=float,
            default=300.0,
            help="Seconds the whole run may take; checks not reached by then are reported (default: %(default)s).",
        )
        add("--json", action="store_true", help="Print the results as JSON instead of one line per check.")
        add("--junit", metavar="FILE", help="Also write the results as JUnit XML to FILE.")

    def handle(self, *args: Any, **options: Any) -> None:
        auth = self._auth_options(options)
        service_key = options["service_key"] or settings.IFTTT_SERVICE_KEY
        as_lines = not options["json"]
        started = time.monotonic()

        def show(result: CheckResult) -> None:
            if as_lines:
                style = {
                    "passed": self.style.SUCCESS,
                    "failed": self.style.ERROR,
                    "skipped": self.style.WARNING,
                    "warning": self.style.WARNING,
                    "not run": self.style.WARNING,
                }
                lines = result_lines(result)
                self.stdout.write(style[result.outcome](lines[0]))
                for line in lines[1:]:
                    self.stdout.write(line)

        with self._target(options["url"], options["port"], as_lines) as base_url:
            results = run_checks(
                base_url=base_url,
                service_key=service_key,
                auth=auth,
                on_result=show,
                timeout=options["timeout"],
                budget=options["budget"] or None,
            )
        target = options["url"] or "this project (in-process)"
        if options["junit"]:
            Path(options["junit"]).write_bytes(as_junit(results, target=target))
        if options["json"]:
            self.stdout.write(as_json(results, target=target))
        counts = summary(results)
        took = f"{summary_line(results)} in {time.monotonic() - started:.1f} s"
        unreached = (
            " Checks marked “not run” did not run at all: their results are unknown." if counts["not_run"] else ""
        )
        if counts["failed"]:
            raise CommandError(
                f"{took}. Each failure above shows the request and the response; fix them and run the checks "
                f"again.{unreached}"
            )
        if counts["not_run"]:
            raise CommandError(f"{took}.{unreached}")
        if as_lines:
            self.stdout.write(self.style.SUCCESS(f"All clear: {took}."))

    def _auth_options(self, options: dict[str, Any]) -> AuthOptions | None:
        if not options["auth"]:
            return None
        if not options["user"] or not options["password"]:
            raise CommandError("--auth signs a user in: give --user and --password (e.g. --user demo --password …).")
        slug = options["service_slug"] or settings.IFTTT_SERVICE_SLUG
        return AuthOptions(
            username=options["user"],
            password=options["password"],
            client_id=options["client_id"] or settings.IFTTT_CLIENT_ID,
            client_secret=options["client_secret"] or settings.IFTTT_CLIENT_SECRET,
            redirect_uri=f"https://ifttt.com/channels/{slug}/authorize",
            authorize_url=options["authorize_url"],
            token_url=options["token_url"],
            revoke_url=options["revoke_url"],
        )

    @contextlib.contextmanager
    def _target(self, url: str | None, port: int, chatty: bool) -> Iterator[str]:
        if url:
            yield url.rstrip("/")
            return
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("The database is not migrated: run `python manage.py migrate`, then the checks again.")
        with service_in_thread(port=port) as base_url:
            if chatty:
                self.stdout.write(f"Serving this project in-process at {base_url} for the checks.")
            yield base_url
