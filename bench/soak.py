#!/usr/bin/env python
"""A soak of the `make run` stack: does it stay up, and is nothing lost, under steady mixed use?

Starts what `make run` starts (migrate, setup_ifttt, seed_demo, `manage.py serve`: gunicorn, a Celery
worker and beat on SQLite with the embedded broker) with a fresh VAR_DIR in a temporary folder and free
ports, and a local Realtime receiver (a real HTTP server) in place of IFTTT's. For the given time a few
clients keep using it the way IFTTT and people do: trigger polls with trigger identities and the
`X-IFTTT-Realtime` header, actions, device readings through the device API, switches on the account
page and Connect webhooks. Then it waits for the background work to finish and reports:

- crashes: `serve` ending on its own, or a part of it dying (a worker, beat or gunicorn);
- restarts: parts `serve` started again;
- 5xx: answers >= 500 and requests that got no answer (other unexpected answers are counted apart);
- tasks lost: Realtime notifications still pending or not delivered, Connect webhooks not processed;
- identities not notified: identities whose trigger got an event, without a notification received
  after that identity's newest event.

Any nonzero count fails (exit status 1). Progress is printed every `--progress` seconds.

    .venv/bin/python bench/soak.py --minutes 30        # or: make soak DURATION=30
    .venv/bin/python bench/soak.py --minutes 3         # as CI runs it
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import say  # noqa: E402

PYTHON = sys.executable
SERVICE_KEY = "dev-service-key"  # the development key: what `make run` uses
USERS = 4
PASSWORD = "soak-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- IFTTT's Realtime API, played by a local HTTP server -------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                at = time.time()
                with receiver.lock:
                    receiver.requests += 1
                    for entry in body.get("data", []):
                        identity = entry.get("trigger_identity")
                        if identity:
                            receiver.arrivals[identity].append(at)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/notifications"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- Data: users, devices with API keys, access tokens ---------------------------------------------


@dataclass
class Person:
    username: str
    token: str
    user_public_id: str
    switches: list[str]  # public ids of a light and a plug
    thermostat: str
    device_keys: dict[str, str]  # public id -> device API key
    identities: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # identity, slug, fields
    session: requests.Session | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def people_create() -> list[Person]:
    """In this process, before `serve` starts: the database is the stack's own SQLite file."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from accounts.models import User
    from devices.models import Device, DeviceKind
    from devices.services import device_api_key_hash

    application = Application.objects.get(client_id=settings.IFTTT_CLIENT_ID)
    people = []
    for n in range(USERS):
        user = User.objects.create_user(username=f"soak{n}", password=PASSWORD)
        keys: dict[str, str] = {}
        devices = {}
        for kind in (DeviceKind.LIGHT, DeviceKind.PLUG, DeviceKind.THERMOSTAT):
            key = f"dk_soak_{uuid.uuid4().hex}"
            device = Device(owner=user, name=f"Soak {kind} {n}", kind=kind, room="Soak")
            device.api_key_hash = device_api_key_hash(key)
            device.save()
            keys[device.public_id] = key
            devices[kind] = device
        token = f"soak-{uuid.uuid4().hex}"
        AccessToken.objects.create(
            user=user, application=application, token=token, expires=timezone.now() + timedelta(days=1), scope="ifttt"
        )
        person = Person(
            username=user.username,
            token=token,
            user_public_id=user.public_id,
            switches=[devices[DeviceKind.LIGHT].public_id, devices[DeviceKind.PLUG].public_id],
            thermostat=devices[DeviceKind.THERMOSTAT].public_id,
            device_keys=keys,
        )
        for switch in person.switches:
            person.identities.append((uuid.uuid4().hex, "device_switched_on", {"device": switch}))
            person.identities.append((uuid.uuid4().hex, "device_switched_off", {"device": switch}))
        person.identities.append(
            (uuid.uuid4().hex, "temperature_rises_above", {"device": person.thermostat, "threshold": "20"})
        )
        people.append(person)
    return people


# --- The load --------------------------------------------------------------------------------------


class Load:
    def __init__(self, base: str, people: list[Person]) -> None:
        self.base = base
        self.people = people
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # "5xx" (and no answer), "unexpected"
        self.examples: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.readings: dict[str, int] = defaultdict(int)

    def _record(
        self, what: str, response: requests.Response | None, expected: tuple[int, ...], error: str = ""
    ) -> None:
        with self.lock:
            self.counts[what] += 1
            if response is None or response.status_code >= 500:
                self.failures["5xx"] += 1
                status = error if response is None else str(response.status_code)
            elif response.status_code not in expected or "/login" in response.headers.get("Location", ""):
                self.failures["unexpected"] += 1
                status = f"{response.status_code} {response.text[:200]}"
            else:
                return
            if len(self.examples) < 20:
                self.examples.append(f"{what}: {status}")

    def _call(self, what: str, expected: tuple[int, ...], method: str, url: str, **kwargs: Any) -> None:
        session = kwargs.pop("session", None) or requests
        try:
            response = session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            self._record(what, None, expected, f"no answer ({type(exc).__name__})")
            return
        self._record(what, response, expected)

    def poll(self, person: Person, identity: tuple[str, str, dict[str, str]]) -> None:
        trigger_identity, slug, fields = identity
        self._call(
            "trigger poll",
            (200,),
            "POST",
            f"{self.base}/ifttt/v1/triggers/{slug}",
            headers={"Authorization": f"Bearer {person.token}", "X-IFTTT-Realtime": "1"},
            json={"trigger_identity": trigger_identity, "triggerFields": fields, "limit": 50},
        )

    def action(self, person: Person) -> None:
        slug = random.choice(("switch_on", "switch_off"))
        self._call(
            "action",
            (200,),
            "POST",
            f"{self.base}/ifttt/v1/actions/{slug}",
            headers={"Authorization": f"Bearer {person.token}"},
            json={"actionFields": {"device": random.choice(person.switches)}},
        )

    def reading(self, person: Person) -> None:
        device = random.choice([*person.switches, person.thermostat])
        if device == person.thermostat:
            self.readings[device] += 1
            event = {"type": "temperature", "value": (18, 22)[self.readings[device] % 2]}
        else:
            event = {"type": random.choice(("switched_on", "switched_off"))}
        self._call(
            "device reading",
            (202,),
            "POST",
            f"{self.base}/api/v1/device/events",
            headers={"Authorization": f"Device {person.device_keys[device]}"},
            json={"events": [{**event, "event_id": uuid.uuid4().hex}]},
        )

    def account_switch(self, person: Person) -> None:
        with person.lock:
            if person.session is None:
                session = requests.Session()
                try:
                    session.get(f"{self.base}/accounts/login/", timeout=30)
                    session.post(
                        f"{self.base}/accounts/login/",
                        data={
                            "username": person.username,
                            "password": PASSWORD,
                            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
                        },
                        timeout=30,
                    )
                except requests.RequestException as exc:
                    self._record("account sign-in", None, (200,), f"no answer ({type(exc).__name__})")
                    return
                person.session = session
            session = person.session
        self._call(
            "account switch",
            (303,),
            "POST",
            f"{self.base}/account/devices/{random.choice(person.switches)}/switch/",
            data={"on": random.choice(("1", "0")), "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
            allow_redirects=False,
            session=session,
        )

    def webhook(self, person: Person) -> None:
        event = random.choice(("enabled", "updated", "disabled"))
        sent_at = int(time.time() * 1000)
        self._call(
            "connect webhook",
            (200,),
            "POST",
            f"{self.base}/ifttt/v1/webhooks/connection/{event}",
            headers={"IFTTT-Service-Key": SERVICE_KEY, "X-Request-ID": uuid.uuid4().hex},
            json={
                "sent_at": sent_at,
                "type": "connection",
                "event": event,
                "data": {
                    "connection_id": f"soak-{person.username}",
                    "user_id": person.user_public_id,
                    "user_timezone": "Pacific Time (US & Canada)",
                },
                "event_data": {f"{event}_at": str(sent_at)},
            },
        )

    def client(self, seed: int, rate: float) -> None:
        """One client: a random mix, about `rate` requests a second."""
        rng = random.Random(seed)
        operations = (
            (self.poll_some, 4),
            (self.reading, 3),
            (self.action, 2),
            (self.account_switch, 1),
            (self.webhook, 1),
        )
        funcs = [f for f, weight in operations for _ in range(weight)]
        while not self.stop.is_set():
            person = rng.choice(self.people)
            rng.choice(funcs)(person)
            self.stop.wait(rng.expovariate(rate))

    def poll_some(self, person: Person) -> None:
        self.poll(person, random.choice(person.identities))


# --- The stack -------------------------------------------------------------------------------------


def stack_env(var_dir: Path, receiver_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL", "IFTTT_"))}
    env.update(
        {
            "VAR_DIR": str(var_dir),
            "DJANGO_DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "iftttsvc.settings",
            "IFTTT_REALTIME_URL": receiver_url,
            "WEB_CONCURRENCY": "2",
        }
    )
    return env


def manage(env: dict[str, str], *command: str) -> None:
    subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def wait_up(url: str, serve: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            raise SystemExit(f"serve stopped while starting:\n{log.read_text()[-3000:]}")
        try:
            answered = requests.get(url, headers={"IFTTT-Service-Key": SERVICE_KEY}, timeout=2).status_code == 200
            if answered and "ready." in log.read_text(errors="replace"):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"The stack did not serve {url} with its worker ready within {timeout:.0f} s.")


RESTART = re.compile(r"^serve: (.+?) stopped after", re.M)


def log_findings(log: Path) -> tuple[int, list[str]]:
    text = log.read_text(errors="replace")
    restarts = RESTART.findall(text)
    unrecoverable = text.count("Unrecoverable error")
    return len(restarts) + unrecoverable, restarts


def results_wait(timeout: float) -> dict[str, int]:
    """Wait for background work to settle; count what never finished."""
    from django.db.models import Q

    from connections.models import DeliveryStatus as WebhookStatus
    from connections.models import WebhookDelivery
    from triggers.models import OPEN_DELIVERY_STATUSES, DeliveryStatus, RealtimeDelivery, TriggerIdentity

    deadline = time.monotonic() + timeout
    while True:
        pending = TriggerIdentity.objects.filter(notify_pending_since__isnull=False).count()
        open_deliveries = RealtimeDelivery.objects.filter(status__in=OPEN_DELIVERY_STATUSES).count()
        webhooks = WebhookDelivery.objects.filter(
            Q(status=WebhookStatus.RECEIVED) | Q(status=WebhookStatus.PROCESSING)
        ).count()
        if not (pending or open_deliveries or webhooks) or time.monotonic() > deadline:
            break
        time.sleep(1)
    failed = RealtimeDelivery.objects.filter(status__in=(DeliveryStatus.FAILED, DeliveryStatus.DROPPED)).count()
    return {
        "identities still pending": pending,
        "Realtime deliveries open": open_deliveries,
        "Realtime deliveries failed": failed,
        "Connect webhooks not processed": webhooks,
    }


def identities_not_notified(receiver: Receiver) -> tuple[int, int]:
    """(identities whose trigger got an event, of those: no notification after their newest event)."""
    from django.db.models import F, Max

    from triggers.models import TriggerFeedItem

    # Events recorded after the identity existed: older ones joined its feed when IFTTT first polled.
    newest = (
        TriggerFeedItem.objects.filter(identity__user__username__startswith="soak")
        .filter(event__recorded_at__gt=F("identity__first_seen_at"))
        .values("identity__identity")
        .annotate(at=Max("created_at"))
    )
    with receiver.lock:
        arrivals = {k: list(v) for k, v in receiver.arrivals.items()}
    missing = [
        row["identity__identity"]
        for row in newest
        if not any(at >= row["at"].timestamp() for at in arrivals.get(row["identity__identity"], []))
    ]
    return len(newest), len(missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("DURATION") or 30))
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second per client (default 2)")
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="soak-"))
    receiver = Receiver()
    env = stack_env(var_dir, receiver.url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = var_dir / "serve.log"
    say(f"Soak: {args.minutes:g} min, {args.clients} clients at about {args.rate:g} requests/s each, in {var_dir}")
    say("Preparing the stack as `make run` does: migrate, setup_ifttt, seed_demo…")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "setup_ifttt")
    manage(env, "seed_demo")
    os.environ.update(env)
    import django

    django.setup()
    people = people_create()

    serve = subprocess.Popen(
        [PYTHON, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    load = Load(base, people)
    crashed = ""
    try:
        wait_up(f"{base}/ifttt/v1/status", serve, log)
        say(f"Serving {base} (Realtime to {receiver.url}); load for {args.minutes:g} min…")
        for person in people:  # IFTTT polls each identity once when an Applet is turned on
            for identity in person.identities:
                load.poll(person, identity)
        threads = [threading.Thread(target=load.client, args=(n, args.rate), daemon=True) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        end = started + args.minutes * 60
        next_progress = started + args.progress
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if serve.poll() is not None:
                crashed = f"serve stopped by itself with exit code {serve.returncode}"
                break
            if time.monotonic() >= next_progress:
                next_progress += args.progress
                restarts, _ = log_findings(log)
                with load.lock:
                    total, failures = sum(load.counts.values()), dict(load.failures)
                minutes = (time.monotonic() - started) / 60
                say(
                    f"  {minutes:5.1f} min: {total:,} requests, 5xx {failures.get('5xx', 0)}, "
                    f"unexpected {failures.get('unexpected', 0)}, restarts {restarts}, "
                    f"notifications {receiver.requests:,}"
                )
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        say("Load stopped; waiting for the background work to finish…")
        lost = results_wait(timeout=90)
        identities, not_notified = identities_not_notified(receiver)
    finally:
        load.stop.set()
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)  # serve stops its children itself
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
        receiver.server.shutdown()

    restarts, which = log_findings(log)
    figures = {
        "crashes": (1 if crashed else 0) + restarts,
        "restarts": restarts,
        "5xx": load.failures["5xx"],
        "unexpected answers": load.failures["unexpected"],
        "tasks lost": sum(lost.values()),
        "identities not notified": not_notified,
    }
    say("")
    say(f"## Soak: {args.minutes:g} min of `make run` under steady mixed use")
    say("")
    say(f"Requests: {sum(load.counts.values()):,} ({', '.join(f'{k} {v:,}' for k, v in sorted(load.counts.items()))})")
    say(f"Realtime: {receiver.requests:,} notification requests; {identities} identities got events")
    say("")
    say("| count | value |")
    say("|---|---|")
    for name, value in figures.items():
        say(f"| {name} | {value} |")
    if crashed:
        say(f"\n{crashed}")
    if which:
        say(f"Restarted: {', '.join(which)}")
    if any(lost.values()):
        say("Lost: " + ", ".join(f"{k} {v}" for k, v in lost.items() if v))
    if load.examples:
        say("Failed requests (first ones): " + "; ".join(load.examples))
    if (ROOT / "control").exists():
        say("The broker wrote a control/ folder into the source tree.")
        figures["crashes"] += 1
    failed = any(figures.values())
    if failed or args.keep:
        say(f"Logs and the database are kept in {var_dir}")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    if failed:
        say("\nSOAK FAILED: every count above must be 0.")
        sys.exit(1)
    say("\nSoak passed: every count is 0.")


if __name__ == "__main__":
    main()
