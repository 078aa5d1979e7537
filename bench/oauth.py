#!/usr/bin/env python
"""What connecting IFTTT and the account page cost, beside `GET /ifttt/v1/status` in the same run.

Builds a PostgreSQL database with the demo user (`seed_demo`: six devices, a week of history) among
other users' device events (`--events`, inserted with SQL generate_series), then times, through the
whole Django stack (middleware, CSP, throttling backend, views), each step IFTTT's connection takes:
the consent page, Allow, the code exchange, user/info, a refresh, a revocation; and the account page
with its activity chart. The token endpoint verifies the hashed client secret on every call, so it is
timed twice: with the secret under Django's password hasher (PBKDF2, django-oauth-toolkit's default)
and under protocol.hashers.ClientSecretHasher (what setup_ifttt stores). Each figure is the median of
`--runs` runs after a warm-up.

Tokens at rest: the same steps with tokens stored as digests (protocol/tokens.py and the service's
validator) against the provider's stock validator storing them as given, in interleaved rounds, with
`GET /ifttt/v1/status` as the floor of each round: the code exchange, a refresh, and what a poll pays
to authenticate (the bearer lookup alone, and `GET /ifttt/v1/user/info`).

    .venv/bin/python bench/oauth.py                          # about two minutes
    .venv/bin/python bench/oauth.py --events 100000 --runs 10  # a quick look
    .venv/bin/python bench/oauth.py --token-storage-only       # tokens at rest only

Results go to bench/results/oauth-latest.md.
"""

# The SQL below is assembled from this file's own constants and integers, never from input.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_oauth"
CLIENT_SECRET = "bench-client-secret"
OTHER_USERS = 2_000
DEVICES_PER_USER = 4


def populate(events: int) -> None:
    """Other people's devices and a month of their events, so the account page's queries meet a real table."""
    from django.db import connection

    from accounts.models import User
    from devices.models import Device, DeviceKind

    kinds = [DeviceKind.LIGHT, DeviceKind.PLUG, DeviceKind.THERMOSTAT, DeviceKind.MOTION_SENSOR]
    users = User.objects.bulk_create(
        [User(username=f"user{i}", password="!", email=f"user{i}@example.invalid") for i in range(OTHER_USERS)],
        batch_size=1000,
    )
    Device.objects.bulk_create(
        [Device(owner=u, name=f"{k} {i}", kind=k, room="Room") for u in users for i, k in enumerate(kinds)],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO devices_deviceevent
                (public_id, device_id, owner_id, type, data, occurred_at, recorded_at, source)
            SELECT md5(g::text || '-bench'), d.id, d.owner_id,
                   (ARRAY['switched_on', 'switched_off', 'temperature', 'motion'])[1 + g % 4],
                   '{{}}'::jsonb, now() - (g % 2592000) * interval '1 second', now(), 'device'
            FROM generate_series(1, {int(events)}) AS g
            JOIN (SELECT id, owner_id, row_number() OVER (ORDER BY id) - 1 AS n FROM devices_device
                  WHERE name <> '') AS d
              ON d.n = g % {OTHER_USERS * DEVICES_PER_USER}
            """
        )
        cursor.execute("ANALYZE")


def timed(runs: int, step: Callable[[], Any]) -> list[float]:
    step()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--events", type=int, default=1_000_000, help="other users' events (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per step (default 30)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds for tokens at rest (default 7)")
    parser.add_argument("--token-storage-only", action="store_true", help="only time tokens at rest")
    args = parser.parse_args()
    if args.token_storage_only:
        args.events = 0

    django_start(
        args.database_url, IFTTT_REALTIME_URL="", IFTTT_CLIENT_SECRET=CLIENT_SECRET, CELERY_TASK_ALWAYS_EAGER="1"
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings, setup_test_environment

    from accounts.models import User
    from protocol.access import ifttt_application_ensure

    setup_test_environment()  # the test client then exposes each response's template context
    say(f"Inserting {OTHER_USERS:,} other users with {args.events:,} device events…")
    started = time.perf_counter()
    populate(args.events)
    say(f"  done in {time.perf_counter() - started:.0f} s")
    call_command("seed_demo", "--allow-published-passwords", verbosity=0)
    demo = User.objects.get(username="demo")

    browser = Client()
    browser.force_login(demo)
    ifttt = Client()
    query = urlencode(
        {
            "client_id": settings.IFTTT_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": settings.IFTTT_REDIRECT_URI,
            "scope": "ifttt",
            "state": "bench",
        }
    )
    authorize = f"/oauth/authorize/?{query}"
    credentials = {"client_id": settings.IFTTT_CLIENT_ID, "client_secret": CLIENT_SECRET}
    allow_form: dict[str, str] = {}

    def consent_page() -> None:
        page = browser.get(authorize)
        assert page.status_code == 200
        allow_form.update({k: v for k, v in page.context["form"].initial.items() if v is not None}, allow="Allow")

    def allow() -> str:
        response = browser.post(authorize, allow_form)
        assert response.status_code == 302, response.status_code
        return parse_qs(urlsplit(response["Location"]).query)["code"][0]

    def token(**form: str) -> dict[str, Any]:
        response = ifttt.post("/oauth/token/", {**form, **credentials})
        assert response.status_code == 200, response.content
        return response.json()

    def exchange() -> dict[str, Any]:
        code = allow()
        return token(grant_type="authorization_code", code=code, redirect_uri=settings.IFTTT_REDIRECT_URI)

    results: dict[str, list[float]] = {}
    service_key = {"HTTP_IFTTT_SERVICE_KEY": settings.IFTTT_SERVICE_KEY}

    def measure(label: str, step: Callable[[], Any]) -> None:
        results[label] = timed(args.runs, step)
        say(f"  {label}: {statistics.median(results[label]):.2f} ms")

    def round_with(hasher_label: str, hashers: list[str]) -> None:
        with override_settings(PASSWORD_HASHERS=hashers):
            from oauth2_provider.models import Application

            # Store the secret with this round's first hasher, whatever setup_ifttt chose.
            application = Application.objects.get(client_id=settings.IFTTT_CLIENT_ID)
            application.client_secret = CLIENT_SECRET
            application.save()
            say(f"Timing with {hasher_label} ({application.client_secret.split('$')[0]}):")
            consent_page()
            tokens = exchange()
            bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
            if hasher_label == "the password hasher":
                measure("GET /ifttt/v1/status (baseline)", lambda: ifttt.get("/ifttt/v1/status", **service_key))
                measure("GET /ifttt/v1/user/info", lambda: ifttt.get("/ifttt/v1/user/info", **bearer))
                measure("GET /oauth/authorize/ (consent page)", consent_page)
                measure("POST /oauth/authorize/ (Allow)", allow)
                measure("GET /account/ (devices, chart, connection)", lambda: browser.get("/account/"))
            current = dict(tokens)
            exchange_times: list[float] = []
            revoke_times: list[float] = []

            def refresh() -> None:
                current.update(token(grant_type="refresh_token", refresh_token=current["refresh_token"]))

            def exchange_only() -> None:
                code = allow()
                started = time.perf_counter()
                token(grant_type="authorization_code", code=code, redirect_uri=settings.IFTTT_REDIRECT_URI)
                exchange_times.append((time.perf_counter() - started) * 1000)

            def revoke() -> None:
                fresh = exchange()
                started = time.perf_counter()
                response = ifttt.post("/oauth/revoke_token/", {"token": fresh["access_token"], **credentials})
                revoke_times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200

            timed(args.runs, exchange_only)
            results[f"POST /oauth/token/ code exchange, secret under {hasher_label}"] = exchange_times[1:]
            say(f"  code exchange: {statistics.median(exchange_times[1:]):.2f} ms")
            measure(f"POST /oauth/token/ refresh, secret under {hasher_label}", refresh)
            timed(min(args.runs, 10), revoke)
            results[f"POST /oauth/revoke_token/, secret under {hasher_label}"] = revoke_times[1:]
            say(f"  revoke: {statistics.median(revoke_times[1:]):.2f} ms")

    ifttt_application_ensure()
    if not args.token_storage_only:
        # Before: the provider's default, the slow password hash. After: protocol.hashers.ClientSecretHasher.
        round_with("the password hasher", list(settings.PASSWORD_HASHERS))
        round_with("ClientSecretHasher", ["protocol.hashers.ClientSecretHasher", *settings.PASSWORD_HASHERS])
    else:
        consent_page()
    storage = token_storage_rounds(args.rounds, args.runs, ifttt, service_key, allow, token)

    if args.token_storage_only:
        report = storage
        say("")
        say(report)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "oauth-tokens-latest.md").write_text(report + "\n")
        say(f"\nWritten to {(RESULTS_DIR / 'oauth-tokens-latest.md').relative_to(ROOT)}.")
        return
    baseline = statistics.median(results["GET /ifttt/v1/status (baseline)"])
    lines = [
        f"{args.events:,} other events, {args.runs} runs per step (revocation: {min(args.runs, 10)}), "
        "medians through Django's test client.",
        "",
        "| step | median ms | p90 ms | ÷ status |",
        "|---|---:|---:|---:|",
    ]
    for label, times in results.items():
        ordered = sorted(times)
        median = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        lines.append(f"| {label} | {median:.2f} | {p90:.2f} | {median / baseline:.1f} |")
    report = "\n".join(lines) + "\n\n" + storage
    say("")
    say(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "oauth-latest.md").write_text(report + "\n")
    say(f"\nWritten to {(RESULTS_DIR / 'oauth-latest.md').relative_to(ROOT)}.")


def token_storage_rounds(
    rounds: int,
    runs: int,
    ifttt: Any,
    service_key: dict[str, str],
    allow: Callable[[], str],
    token: Callable[..., dict[str, Any]],
) -> str:
    """Tokens stored as digests against the stock provider storing them as given, interleaved rounds."""
    from django.conf import settings
    from django.db.models.signals import post_save, pre_save
    from django.test.utils import override_settings

    from protocol.auth import access_token_for
    from protocol.tokens import token_storage_connect

    def stock() -> Any:
        pre_save.disconnect(dispatch_uid="protocol-token-digest")
        post_save.disconnect(dispatch_uid="protocol-token-checksum")
        return override_settings(
            OAUTH2_PROVIDER={
                **settings.OAUTH2_PROVIDER,
                "OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator",
                "ALWAYS_RELOAD_OAUTHLIB_CORE": True,
            }
        )

    def digests() -> Any:
        token_storage_connect()
        return override_settings(OAUTH2_PROVIDER={**settings.OAUTH2_PROVIDER, "ALWAYS_RELOAD_OAUTHLIB_CORE": True})

    variants = {"stored as given (stock provider)": stock, "stored as digests": digests}
    steps = ("status (floor)", "code exchange", "refresh", "bearer lookup (a poll's auth)", "user/info")
    medians: dict[tuple[str, str], list[float]] = {(v, s): [] for v in variants for s in steps}

    def sample(step: Callable[[], Any]) -> float:
        started = time.perf_counter()
        step()
        return (time.perf_counter() - started) * 1000

    say(f"Tokens at rest: {rounds} interleaved rounds of {runs} runs per step…")
    for round_number in range(rounds + 1):  # round 0 warms up
        # Alternate which variant goes first, so a drift in the machine's load favours neither.
        order = list(variants.items())[:: 1 if round_number % 2 else -1]
        for variant, enter in order:
            with enter():
                times: dict[str, list[float]] = {step: [] for step in steps}
                tokens = token(grant_type="authorization_code", code=allow(), redirect_uri=settings.IFTTT_REDIRECT_URI)
                bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
                for _ in range(runs):
                    times["status (floor)"].append(sample(lambda: ifttt.get("/ifttt/v1/status", **service_key)))
                    code = allow()
                    form = {"grant_type": "authorization_code", "code": code}
                    times["code exchange"].append(
                        sample(lambda: token(**form, redirect_uri=settings.IFTTT_REDIRECT_URI))  # noqa: B023
                    )
                    times["refresh"].append(
                        sample(
                            lambda: tokens.update(  # noqa: B023
                                token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])  # noqa: B023
                            )
                        )
                    )
                    bearer["HTTP_AUTHORIZATION"] = f"Bearer {tokens['access_token']}"
                    assert access_token_for(tokens["access_token"]) is not None
                    times["bearer lookup (a poll's auth)"].append(
                        sample(lambda: access_token_for(tokens["access_token"]))  # noqa: B023
                    )
                    times["user/info"].append(sample(lambda: ifttt.get("/ifttt/v1/user/info", **bearer)))  # noqa: B023
            if round_number:
                for step in steps:
                    medians[(variant, step)].append(statistics.median(times[step]))
    token_storage_connect()

    lines = [
        f"Tokens at rest: {rounds} interleaved rounds × {runs} runs; each cell is the median of the round "
        "medians (min–max of the round medians), ms, through Django's test client.",
        "",
        "| step | " + " | ".join(variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for step in steps:
        cells = []
        for variant in variants:
            values = medians[(variant, step)]
            cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
