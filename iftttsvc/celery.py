"""The Celery application. Configuration lives in settings under the CELERY_ namespace."""

import os

from celery import Celery

from core.broker import register as broker_register

# `sqlite://` broker URLs (the embedded broker) resolve to core/broker.py in every process.
broker_register()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")

app = Celery("iftttsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A worker's own health and metrics server (WORKER_HEALTH_PORT), and the request id carried into tasks.
import core.observability  # noqa: E402
import core.worker_health  # noqa: E402, F401
