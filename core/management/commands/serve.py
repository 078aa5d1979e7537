"""Serve the web app and the background worker together, as `make run` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run gunicorn and a Celery worker (with the beat schedule) until interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))

    def handle(self, *args: Any, port: int, host: str, web_workers: int, **options: Any) -> None:
        call_command("collectstatic", interactive=False, verbosity=0)
        base = f"http://{host}:{port}"
        broker = "embedded (files under var/broker)" if settings.CELERY_EMBEDDED_BROKER else settings.CELERY_BROKER_URL
        self.stdout.write(
            "\n".join(
                [
                    "",
                    self.style.SUCCESS("The IFTTT service is starting."),
                    f"  Service API     {base}/ifttt/v1/",
                    f"  API docs        {base}/api/docs/",
                    f"  Your account    {base}/account/   (demo user: demo / demo-password)",
                    f"  Support console {base}/admin/     (support user: admin / admin-password)",
                    f"  Service key     {settings.IFTTT_SERVICE_KEY}",
                    f"  Database        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
                    f"  Broker          {broker}",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
        bin_dir = os.path.dirname(sys.executable)
        worker = subprocess.Popen(
            [
                os.path.join(bin_dir, "celery"),
                "-A",
                "iftttsvc",
                "worker",
                "--beat",
                "--loglevel=INFO",
                "--concurrency=2",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
            # A development machine (or container) often runs as root; Celery's warning about it, at every
            # start, says nothing a developer can act on. Production runs the worker as its own user.
            env={**os.environ, "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges"},
        )
        web = subprocess.Popen(
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
            ]
        )
        children = (web, worker)

        def stop(*_: Any) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
