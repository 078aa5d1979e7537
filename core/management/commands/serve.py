"""Serve the web app and the background worker together, as `make run` does."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.broker import database_path
from core.supervise import ChildSpec, GaveUp, Supervisor


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and beat until interrupted, starting again any that dies."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        # A part that dies more often than this within the window is not started again: serve stops.
        parser.add_argument("--max-restarts", type=int, default=int(os.environ.get("SERVE_MAX_RESTARTS") or "5"))
        parser.add_argument(
            "--restart-window", type=float, default=float(os.environ.get("SERVE_RESTART_WINDOW") or "600")
        )

    def handle(self, *args: Any, port: int, host: str, web_workers: int, **options: Any) -> None:
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write("Starting the web server, the Celery worker and beat…")
        self.stdout.flush()
        bin_dir = os.path.dirname(sys.executable)
        # --quiet: no Celery banner and task list; the worker still logs "ready." when it consumes.
        celery = [os.path.join(bin_dir, "celery"), "-A", "iftttsvc", "--quiet"]
        supervisor = Supervisor(
            [
                ChildSpec(
                    "the web server (gunicorn)",
                    [
                        os.path.join(bin_dir, "gunicorn"),
                        "iftttsvc.wsgi",
                        "--bind",
                        f"{host}:{port}",
                        "--workers",
                        str(web_workers),
                        "--threads",
                        "4",
                        "--access-logfile",
                        "-",
                    ],
                ),
                ChildSpec(
                    "the Celery worker",
                    [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
                    # A development machine (or container) often runs as root; Celery's warning about it, at
                    # every start, says nothing a developer can act on. Production runs the worker as its own user.
                    env={**os.environ, "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges"},
                ),
                ChildSpec(
                    "the Celery beat scheduler",
                    [*celery, "beat", "--loglevel=INFO", "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")],
                ),
            ],
            log=lambda line: self.stderr.write(f"serve: {line}"),
            max_restarts=options["max_restarts"],
            window_seconds=options["restart_window"],
        )
        # Ctrl-C reaches the children too (same process group); SIGTERM is passed on by the supervisor.
        signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
        signal.signal(signal.SIGINT, lambda *_: supervisor.stop())
        # Ours last, once the web answers, so the start-up lines of the parts do not push it off screen.
        base = f"http://{host}:{port}"
        threading.Thread(target=self._banner_when_up, args=(host, port, base), daemon=True).start()
        try:
            supervisor.run()
        except GaveUp as exc:
            self.stderr.write(f"serve: {exc}")
            sys.exit(1)

    def _banner_when_up(self, host: str, port: int, base: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                time.sleep(0.25)
        time.sleep(2.5)  # the worker's and beat's own first lines come within this
        self.stdout.write(banner(base, style=self.style.SUCCESS))
        self.stdout.flush()


def _destination(url: str, real: str, off: str) -> str:
    if not url:
        return off
    if url.rstrip("/") == real.rstrip("/"):
        return f"{url}   (IFTTT itself)"
    return url


def banner(base: str, style: Any = str) -> str:
    """What `serve` prints once the web answers: where everything is, and where calls to IFTTT go."""
    if settings.CELERY_EMBEDDED_BROKER:
        broker = f"embedded (SQLite: {database_path(settings.CELERY_BROKER_URL)})"
    else:
        broker = settings.CELERY_BROKER_URL
    realtime = _destination(
        settings.IFTTT_REALTIME_URL, settings.IFTTT_REAL_REALTIME_URL, "off (set IFTTT_REALTIME_URL to send them)"
    )
    if settings.IFTTT_CONNECT_URL == settings.IFTTT_NOWHERE_CONNECT_URL:
        connect = "nowhere (development; set IFTTT_CONNECT_URL to call it)"
    else:
        connect = _destination(settings.IFTTT_CONNECT_URL, settings.IFTTT_REAL_CONNECT_URL, "")
    return "\n".join(
        [
            "",
            style(f"{settings.SERVICE_NAME} for IFTTT is running."),
            f"  Landing page    {base}/",
            f"  Service API     {base}/ifttt/v1/",
            f"  API docs        {base}/api/docs/",
            f"  Your account    {base}/account/   (demo user: demo / demo-password)",
            f"  Support console {base}/admin/     (support user: admin / admin-password)",
            f"  Service key     {settings.IFTTT_SERVICE_KEY}",
            f"  Database        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
            f"  Broker          {broker}",
            f"  Realtime        {realtime}",
            f"  Connect API     {connect}",
            "Next: in another terminal, `make demo` watches an Applet work end to end. Ctrl-C stops the service.",
            "",
        ]
    )
