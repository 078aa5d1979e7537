"""Liveness and readiness, for load balancers, orchestrators and `manage.py serve`.

Liveness needs nothing and touches nothing: the process answers. Readiness checks what serving needs,
each within a short timeout, and names what failed, so an operator reads the cause, not a code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def _database() -> str:
    # A connection of its own each time: a stale one must not say "ready", and none is left open.
    probe = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        probe.close()
    return "answers"


def _broker() -> str:
    from celery import current_app

    if current_app.conf.task_always_eager:
        return "none needed: tasks run in the web process"
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_TIMEOUT_SECONDS)
    return "reachable"


CHECKS: dict[str, Callable[[], str]] = {"database": _database, "broker": _broker}
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def _run(name: str, check: Callable[[], str]) -> Check:
    started = time.monotonic()

    future = _pool.submit(check)
    try:
        detail = future.result(timeout=settings.HEALTH_TIMEOUT_SECONDS)
        ok = True
    except FutureTimeout:
        ok, detail = False, f"no answer within {settings.HEALTH_TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return Check(name, ok, detail[:300], round(time.monotonic() - started, 4))


def readiness() -> list[Check]:
    """Every check, run side by side, each bounded by HEALTH_TIMEOUT_SECONDS."""
    return [_run(name, check) for name, check in CHECKS.items()]
