"""Run one Applet against an IFTTT service, as IFTTT would, and print what happens as it happens."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from localifttt.applet import Applet, AppletError, AppletQuery, AppletRunner, Filter, RealtimeEndpoint, run_applet
from localifttt.oauth import OAuthError, token_for
from protocol.recipes import RECIPES, Recipe, recipe_cause, recipe_get

DEFAULT_REALTIME_PORT = 8465


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise CommandError(f'{flag} takes NAME=VALUE, e.g. {flag} "device=Desk lamp"; got {value!r}.')
        pairs[name.strip()] = text
    return pairs


def _queries(slugs: list[str] | None, fields: dict[str, str]) -> tuple[AppletQuery, ...]:
    queries = {slug: AppletQuery(slug, {}) for slug in slugs or []}
    for name, value in fields.items():
        slug, sep, field_name = name.partition(".")
        if not sep or slug not in queries:
            raise CommandError(f"--query-field {name}=…: name a --query first and write SLUG.FIELD=VALUE.")
        queries[slug].fields[field_name] = value
    return tuple(queries.values())


def recipe_applet(recipe: Recipe) -> Applet:
    condition = recipe.only_if
    return Applet(
        trigger=recipe.trigger,
        trigger_fields=dict(recipe.trigger_fields),
        action=recipe.action,
        action_fields=dict(recipe.action_fields),
        queries=tuple(AppletQuery(step.slug, dict(step.fields)) for step in recipe.queries),
        only_if=Filter(condition.ingredient, condition.op, condition.value) if condition else None,
    )


def recipe_line(recipe: Recipe) -> str:
    steps = [recipe.trigger, *(f"?{q.slug}" for q in recipe.queries), recipe.action]
    return f"{recipe.slug:<34} {recipe.name}  [{' → '.join(steps)}]"


class Command(BaseCommand):
    help = (
        "List the service's Applet recipes (--list) or run one (--recipe NAME, --all-recipes), or any Applet. "
        "Emulate IFTTT running one Applet: enable it (poll the trigger with a fresh trigger identity), listen as "
        "IFTTT's Realtime endpoint, poll on each notification, and run the action for each new event with "
        '{{ingredients}} filled in. Dropdown fields take option labels ("Desk lamp") or values.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        port = os.environ.get("PORT", "8000")
        add("--url", default=f"http://127.0.0.1:{port}", help="The service (default: %(default)s, as `make run`).")
        add("--token", help="An access token for the user whose Applet this is.")
        add("--user", help="Or sign in as this user on the consent page (as IFTTT does when you connect).")
        add("--password", help="The user's password.")
        add("--client-id", help="IFTTT's OAuth client id (default: settings.IFTTT_CLIENT_ID).")
        add("--client-secret", help="IFTTT's OAuth client secret (default: settings.IFTTT_CLIENT_SECRET).")
        add("--service-slug", help="The slug in IFTTT's redirect URI (default: settings.IFTTT_SERVICE_SLUG).")
        add("--list", action="store_true", help="Print the recipes, one a line, and stop.")
        add(
            "--recipe",
            action="append",
            metavar="NAME",
            help="Run this recipe (see --list) instead of --trigger/--action (repeat for several).",
        )
        add("--all-recipes", action="store_true", help="Run every recipe in turn; exits non-zero if one fails.")
        add(
            "--cause",
            action="store_true",
            help="With --recipe/--all-recipes: cause the trigger through this project's device services (same "
            "database as the service) after --nudge-after seconds (default 1).",
        )
        add("--trigger", help="The trigger's slug, e.g. device_switched_on.")
        add("--trigger-field", action="append", metavar="NAME=VALUE", help="A trigger field (repeat for each).")
        add("--action", help="The action's slug, e.g. set_light_color.")
        add(
            "--action-field",
            action="append",
            metavar="NAME=VALUE",
            help='An action field; "{{device_name}} turned on" fills in ingredients (repeat for each).',
        )
        add(
            "--query",
            action="append",
            metavar="SLUG",
            help="A query run when the trigger fires; its first row's ingredients are {{SLUG.name}} (repeat).",
        )
        add(
            "--query-field",
            action="append",
            metavar="SLUG.NAME=VALUE",
            help='A query field, e.g. "list_devices.room=Hallway"; may use the trigger\'s {{ingredients}}.',
        )
        add("--realtime-host", default="127.0.0.1", help="Where to listen for Realtime notifications.")
        add(
            "--realtime-port",
            type=int,
            default=DEFAULT_REALTIME_PORT,
            help="Port of the local Realtime endpoint (default: %(default)s; -1: do not listen).",
        )
        add("--service-key", help="The key notifications must carry (default: settings.IFTTT_SERVICE_KEY).")
        add("--poll-every", type=float, default=60.0, help="Seconds between polls without notifications (60).")
        add("--nudge-after", type=float, help="If nothing happened after this many seconds, run the nudge actions.")
        add(
            "--nudge-action",
            action="append",
            metavar="SLUG",
            help="An action run with the trigger's field values to cause an event (repeat; see --nudge-after).",
        )
        add("--hint", default="", help="A line telling the person at the terminal how to cause the trigger.")
        add("--stop-after", type=float, help="Stop (and turn the Applet off) after this many seconds.")
        add("--stop-after-runs", type=int, help="Stop after the action has run this many times.")

    def say(self, message: str) -> None:
        self.stdout.write(f"{time.strftime('%H:%M:%S')}  {message}")
        self.stdout.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for recipe in RECIPES:
                self.stdout.write(recipe_line(recipe))
            return
        if options["recipe"] or options["all_recipes"]:
            self._recipes(options)
            return
        if not options["trigger"] or not options["action"]:
            raise CommandError("Give --trigger and --action (or --recipe NAME; --list shows the recipes).")
        base_url = options["url"].rstrip("/")
        applet = Applet(
            trigger=options["trigger"],
            trigger_fields=_pairs(options["trigger_field"], "--trigger-field"),
            action=options["action"],
            action_fields=_pairs(options["action_field"], "--action-field"),
            queries=_queries(options["query"], _pairs(options["query_field"], "--query-field")),
        )
        token = self._token(base_url, options)
        runner = AppletRunner(base_url, token, applet, say=self.say)
        endpoint: RealtimeEndpoint | None = None
        if options["realtime_port"] >= 0:
            key = options["service_key"] if options["service_key"] is not None else settings.IFTTT_SERVICE_KEY
            try:
                endpoint = RealtimeEndpoint(
                    options["realtime_host"], options["realtime_port"], service_key=key, say=self.say
                )
            except OSError as exc:
                raise CommandError(
                    f"Cannot listen on port {options['realtime_port']} ({exc}). Choose another with --realtime-port."
                ) from None
        try:
            if endpoint is None:
                self.say(f"Polling every {options['poll_every']:g} s (no Realtime endpoint).")
                self._run(runner, None, options)
                return
            with endpoint.running():
                self.say(
                    f"IFTTT's Realtime endpoint is listening at {endpoint.url}. For instant runs, start the "
                    f"service with IFTTT_REALTIME_URL={endpoint.url}; meanwhile the trigger is polled every "
                    f"{options['poll_every']:g} s, as IFTTT does."
                )
                self._run(runner, endpoint, options)
        except AppletError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.say("Stopped.")

    def _recipes(self, options: dict[str, Any]) -> None:
        if options["all_recipes"]:
            recipes = list(RECIPES)
        else:
            unknown = [name for name in options["recipe"] if recipe_get(name) is None]
            if unknown:
                known = ", ".join(r.slug for r in RECIPES)
                raise CommandError(f"No recipe {', '.join(map(repr, unknown))}. These are the recipes: {known}")
            recipes = [r for name in options["recipe"] if (r := recipe_get(name)) is not None]
        base_url = options["url"].rstrip("/")
        token = self._token(base_url, options)
        endpoint = self._endpoint(options)
        outcomes: list[tuple[Recipe, str]] = []
        with endpoint.running() if endpoint is not None else contextlib.nullcontext():
            for index, recipe in enumerate(recipes, start=1):
                self.stdout.write(self.style.MIGRATE_HEADING(f"[{index}/{len(recipes)}] {recipe.name} ({recipe.slug})"))
                self.say(recipe.description)
                runner = AppletRunner(base_url, token, recipe_applet(recipe), say=self.say)
                cause = None
                if options["cause"]:
                    cause = self._cause(recipe, runner)
                run_options = {
                    **options,
                    "nudge_after": options["nudge_after"] if options["nudge_after"] is not None else 1.0,
                    "stop_after_runs": options["stop_after_runs"] or 1,
                    "hint": options["hint"] or f"To see it run: {recipe.cause_text()}.",
                }
                if options["cause"] and options["stop_after"] is None:
                    run_options["stop_after"] = 30.0
                try:
                    self._run(runner, endpoint, run_options, cause=cause)
                except AppletError as exc:
                    outcomes.append((recipe, f"could not run: {exc}"))
                    continue
                except KeyboardInterrupt:
                    self.say("Stopped.")
                    return
                if runner.done and not runner.failed:
                    outcomes.append((recipe, ""))
                else:
                    outcomes.append((recipe, f"{runner.done} done, {runner.skipped} skipped, {runner.failed} failed"))
        failed = [(recipe, why) for recipe, why in outcomes if why]
        for recipe, why in outcomes:
            mark = self.style.ERROR(f"✗ {recipe.slug}: {why}") if why else self.style.SUCCESS(f"✓ {recipe.slug}")
            self.stdout.write(mark)
        if failed:
            raise CommandError(f"{len(failed)} of {len(outcomes)} recipe(s) did not run their action.")

    def _cause(self, recipe: Recipe, runner: AppletRunner) -> Any:
        def cause() -> list[str]:
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.filter(public_id=runner.user_id).first()
            if user is None:
                raise AppletError(
                    "--cause changes devices in this project's database, but the service's user "
                    f"{runner.user_id} is not in it: run the command with the service's settings."
                )
            try:
                return recipe_cause(user=user, recipe=recipe)
            except LookupError as exc:
                raise AppletError(str(exc)) from None

        return cause

    def _endpoint(self, options: dict[str, Any]) -> RealtimeEndpoint | None:
        if options["realtime_port"] < 0:
            return None
        key = options["service_key"] if options["service_key"] is not None else settings.IFTTT_SERVICE_KEY
        try:
            return RealtimeEndpoint(options["realtime_host"], options["realtime_port"], service_key=key, say=self.say)
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on port {options['realtime_port']} ({exc}). Choose another with --realtime-port."
            ) from None

    def _run(
        self,
        runner: AppletRunner,
        endpoint: RealtimeEndpoint | None,
        options: dict[str, Any],
        cause: Any = None,
    ) -> None:
        run_applet(
            runner,
            endpoint,
            poll_every=options["poll_every"],
            stop_after=options["stop_after"],
            stop_after_runs=options["stop_after_runs"],
            nudge_after=options["nudge_after"],
            nudge_actions=options["nudge_action"],
            hint=options["hint"],
            cause=cause,
        )

    def _token(self, base_url: str, options: dict[str, Any]) -> str:
        if options["token"]:
            return str(options["token"])
        if not options["user"] or not options["password"]:
            raise CommandError("Say whose Applet this is: --user U --password P (signs in, allows IFTTT) or --token.")
        slug = options["service_slug"] or settings.IFTTT_SERVICE_SLUG
        self.say(f"Connecting the service as IFTTT does: signing in as {options['user']} and allowing access…")
        try:
            return token_for(
                base_url=base_url,
                username=options["user"],
                password=options["password"],
                client_id=options["client_id"] or settings.IFTTT_CLIENT_ID,
                client_secret=options["client_secret"] or settings.IFTTT_CLIENT_SECRET,
                redirect_uri=f"https://ifttt.com/channels/{slug}/authorize",
            )
        except OAuthError as exc:
            hint = (
                f" Is the service running at {base_url}? Start it with `make run` in another terminal."
                if "did not answer" in str(exc)
                else " Has `python manage.py setup_ifttt` created IFTTT's OAuth app (`make run` does)?"
            )
            raise CommandError(f"Could not connect as {options['user']}: {exc}.{hint}") from None
