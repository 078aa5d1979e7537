"""The Celery application. Configuration lives in settings under the CELERY_ namespace."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")

app = Celery("iftttsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A worker's own health and metrics server (WORKER_HEALTH_PORT), and the request id carried into tasks.
import core.observability  # noqa: E402
import core.worker_health  # noqa: E402, F401
