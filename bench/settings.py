"""The service's own settings, plus a bare endpoint to measure the stack against.

Only benchmarks load this module (`DJANGO_SETTINGS_MODULE=bench.settings`), so the product never
ships the bare endpoint. Everything else, middleware included, is exactly what production runs.
"""

from iftttsvc.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# Benchmarks talk plain HTTP on the loopback: production's redirect to HTTPS would answer every call.
SECURE_SSL_REDIRECT = False
