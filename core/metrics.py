"""Prometheus metrics (prometheus-client). Labels stay bounded: endpoint names, slugs from the catalog,
status classes and outcomes, never user ids, identities or request ids.

Counters and histograms live in the process that counts them; under gunicorn's several workers (and the
worker processes of `manage.py serve`), set PROMETHEUS_MULTIPROC_DIR so the scrape adds them up. Gauges
that describe shared state (Realtime backlog, queue depth) are read from the database and broker at
scrape time by collectors the apps register (`collector_register`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NOTIFY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

requests = Counter("ifttt_requests_total", "Calls IFTTT made to the Service API.", ["endpoint", "status_class"])
request_seconds = Histogram(
    "ifttt_request_duration_seconds", "Time to answer IFTTT, by endpoint.", ["endpoint"], buckets=LATENCY_BUCKETS
)
trigger_polls = Counter("ifttt_trigger_polls_total", "Trigger polls, by trigger.", ["trigger", "realtime"])
events_accepted = Counter("device_events_accepted_total", "Device events stored, by how they arrived.", ["source"])
realtime_deliveries = Counter(
    "realtime_deliveries_total", "Realtime notification requests finished, by outcome.", ["outcome"]
)
realtime_attempts = Counter("realtime_attempts_total", "Realtime notification attempts, by outcome.", ["outcome"])
realtime_latency = Histogram(
    "realtime_notification_latency_seconds",
    "From an event's commit to IFTTT's 2xx for its Realtime notification.",
    buckets=NOTIFY_BUCKETS,
)
connect_calls = Counter("connect_calls_total", "Calls to IFTTT's Connect API, by outcome.", ["outcome"])
script_runs = Counter("script_runs_total", "Connection runtime script runs, by outcome.", ["outcome"])
script_seconds = Histogram("script_run_duration_seconds", "How long runtime scripts ran.", buckets=LATENCY_BUCKETS)
api_log_dropped = Counter("api_log_rows_dropped_total", "API-log rows that could not be written.")
oauth_tokens = Counter("oauth_token_events_total", "OAuth tokens issued, refreshed and revoked.", ["event"])

_collectors: list[Callable[[], Iterable[Metric]]] = []


def collector_register(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a scrape-time reader of shared state (it must be cheap: one indexed query or broker call)."""
    _collectors.append(collect)


def gauge(name: str, documentation: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def queue_depth() -> Iterable[Metric]:
    """Messages waiting in the task queue, asked of the broker itself (none with eager tasks)."""
    from celery import current_app
    from django.conf import settings

    if current_app.conf.task_always_eager:
        return
    family = GaugeMetricFamily("celery_queue_depth", "Tasks waiting in the broker's queue.", labels=["queue"])
    # The default queue and Realtime's own (settings.CELERY_WORKER_QUEUES).
    queues = getattr(settings, "CELERY_WORKER_QUEUES", None) or [settings.CELERY_TASK_DEFAULT_QUEUE]
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
            for queue in queues:
                try:
                    _, depth, _ = cast(Any, conn).default_channel.queue_declare(queue=queue, passive=True)
                except Exception:  # noqa: S112 - a queue no worker has declared yet has no depth to report
                    continue
                family.add_metric([queue], depth)
    except Exception:  # a scrape must not fail because the broker does: readiness reports that
        return
    yield family


_collectors.append(queue_depth)


class _SharedState(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in _collectors:
            try:
                yield from list(collect())
            except Exception:  # noqa: S112 - a database or broker outage must not fail the whole scrape
                continue


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def exposition() -> bytes:
    """The text a Prometheus scrape receives: this process's (or all processes') counters, then the gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
        text = generate_latest(counted)
    else:
        text = generate_latest(REGISTRY)
    shared = CollectorRegistry()
    shared.register(_SharedState())
    return text + generate_latest(shared)
