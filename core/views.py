"""Health and metrics endpoints: outside /ifttt/ (so not in the API log) and never cached."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from .health import readiness
from .metrics import exposition


@never_cache
@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers; nothing else is checked (a failing database must not restart every web process)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer within the timeout; else 503 naming what failed."""
    checks = readiness()
    failed = [c.name for c in checks if not c.ok]
    body = {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "seconds": c.seconds} for c in checks},
    }
    response = JsonResponse(body, status=503 if failed else 200)
    if failed:
        response["Retry-After"] = str(settings.HEALTH_RETRY_AFTER_SECONDS)
    return response


def _scrape_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    # Without a token, only this machine may scrape: metrics are not public by default.
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED or not _scrape_allowed(request):
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
