"""Run one connection against an IFTTT service, as IFTTT Connect would, and print each step."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from localifttt.applet import Applet, AppletError, AppletRunner
from localifttt.connect import ConnectionSetup, ConnectStandIn, newest_event, run_connection

from .ifttt_applet import Command as AppletCommand
from .ifttt_applet import _pairs

DEFAULT_CONNECT_PORT = 8466


class Command(AppletCommand):
    help = (
        "Emulate IFTTT Connect running one connection: stand in for the Connect API on a local port, send the "
        "connection/enabled and trigger_subscription/fired webhooks for a chosen event, and answer the calls the "
        "connection's script makes (this service's actions and queries run through its Service API; other "
        "services' calls are recorded). Start the service with IFTTT_CONNECT_URL pointing at the stand-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        port = os.environ.get("PORT", "8000")
        add("--url", default=f"http://127.0.0.1:{port}", help="The service (default: %(default)s, as `make run`).")
        add("--token", help="An access token for the user whose connection this is.")
        add("--user", help="Or sign in as this user on the consent page (as IFTTT does when they connect).")
        add("--password", help="The user's password.")
        add("--client-id", help="IFTTT's OAuth client id (default: settings.IFTTT_CLIENT_ID).")
        add("--client-secret", help="IFTTT's OAuth client secret (default: settings.IFTTT_CLIENT_SECRET).")
        add("--service-slug", help="This service's slug on IFTTT (default: settings.IFTTT_SERVICE_SLUG).")
        add("--service-key", help="The service key, both ways (default: settings.IFTTT_SERVICE_KEY).")
        add("--connection-id", default="local-connection", help="The connection's id (default: %(default)s).")
        add(
            "--script",
            type=Path,
            help="Give the connection this runtime script first (a JavaScript file), in this project's database.",
        )
        add(
            "--trigger",
            required=True,
            help='The trigger, "service.trigger" or one of this service\'s slugs, e.g. device_switched_on.',
        )
        add("--trigger-field", action="append", metavar="NAME=VALUE", help="A field of this service's trigger.")
        add("--event-id", help="Which event of this service's trigger to send (its meta.id; default: the newest).")
        add(
            "--ingredient",
            action="append",
            metavar="NAME=VALUE",
            help="The event's ingredients, given instead of read from this service's trigger (repeat).",
        )
        add(
            "--field",
            action="append",
            metavar="STEP.FIELD=VALUE",
            help='What the user chose for an action or query field, e.g. "set_light_color.lights=Hall light" '
            "(this service's dropdowns take labels).",
        )
        add("--feature-id", default="local-feature", help="The feature whose trigger fires (default: %(default)s).")
        add("--user-feature-id", default="local-user-feature", help="The user's feature id (default: %(default)s).")
        add("--connect-host", default="127.0.0.1", help="Where the Connect API stand-in listens.")
        add(
            "--connect-port",
            type=int,
            default=DEFAULT_CONNECT_PORT,
            help="Its port (default: %(default)s; 0: any free port).",
        )
        add("--wait", type=float, default=20.0, help="Seconds to wait for the script's first call (20).")
        add("--quiet", type=float, default=2.0, help="Stop once no call came for this many seconds (2).")

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = options["url"].rstrip("/")
        slug = options["service_slug"] or settings.IFTTT_SERVICE_SLUG
        key = options["service_key"] if options["service_key"] is not None else settings.IFTTT_SERVICE_KEY
        trigger = options["trigger"] if "." in options["trigger"] else f"{slug}.{options['trigger']}"
        own_trigger = trigger.split(".", 1)[0] == slug
        if options["script"] is not None:
            self._script(options["connection_id"], options["script"])
        token = self._token(base_url, options)
        applet = Applet(
            trigger=trigger.split(".", 1)[1] if own_trigger else "",
            trigger_fields=_pairs(options["trigger_field"], "--trigger-field") if own_trigger else {},
            action="",
            action_fields={},
        )
        runner = AppletRunner(base_url, token, applet, say=self.say)
        try:
            runner.connect()
            user_fields = self._user_fields(runner, slug, options["field"])
            setup = ConnectionSetup(
                connection_id=options["connection_id"],
                service_slug=slug,
                service_key=key,
                trigger_id=trigger,
                feature_id=options["feature_id"],
                user_feature_id=options["user_feature_id"],
                user_fields=user_fields,
            )
            ingredients: dict[str, Any] = dict(_pairs(options["ingredient"], "--ingredient"))
            if not ingredients and own_trigger:
                ingredients = newest_event(runner, options["event_id"])
            try:
                stand_in = ConnectStandIn(
                    options["connect_host"],
                    options["connect_port"],
                    setup=setup,
                    user_id=runner.user_id,
                    runner=runner,
                    say=self.say,
                )
            except OSError as exc:
                raise CommandError(
                    f"Cannot listen on port {options['connect_port']} ({exc}). Choose another with --connect-port."
                ) from None
            with stand_in.running():
                self.say(
                    f"IFTTT's Connect API stands in at {stand_in.url} (the service must run with "
                    f"IFTTT_CONNECT_URL={stand_in.url}). Connection {setup.connection_id}, user {runner.user_id}."
                )
                outcomes = run_connection(
                    setup=setup,
                    runner=runner,
                    stand_in=stand_in,
                    ingredients=ingredients,
                    wait_first=options["wait"],
                    quiet=options["quiet"],
                    say=self.say,
                )
        except AppletError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if own_trigger and runner.user_id:
                runner.disable()  # the trigger identity read for the event, as IFTTT would
            runner.http.session.close()  # IFTTT does not keep idle connections to the service open
        if outcomes["failed"]:
            raise CommandError(f"{outcomes['failed']} of this service's action(s) failed.")

    def _script(self, connection_id: str, path: Path) -> None:
        from connections.models import Connection

        try:
            script = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read the script {path}: {exc}") from None
        Connection.objects.update_or_create(
            connection_id=connection_id, defaults={"script": script, "script_enabled": True}
        )
        self.say(f"Connection {connection_id} has the script {path} ({len(script)} characters), in this database.")

    def _user_fields(self, runner: AppletRunner, slug: str, pairs: list[str] | None) -> dict[str, dict[str, str]]:
        chosen: dict[str, dict[str, str]] = {}
        for name, value in _pairs(pairs, "--field").items():
            step, sep, field_name = name.rpartition(".")
            if not sep or not step:
                raise CommandError(f"--field {name}=…: write STEP.FIELD=VALUE, e.g. set_light_color.lights=Hall light.")
            step_id = step if "." in step else f"{slug}.{step}"
            chosen.setdefault(step_id, {})[field_name] = value
        for step_id, fields in chosen.items():
            service, _, step_slug = step_id.partition(".")
            if service != slug:
                continue
            from protocol.registry import registry

            kind = "queries" if step_slug in registry.queries else "actions"
            chosen[step_id] = runner._resolve(kind, step_slug, fields)
        if chosen:
            self.say(f"The user's choices: {json.dumps(chosen, ensure_ascii=False)}")
        return chosen
