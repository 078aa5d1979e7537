"""The support console's own pages, inside the admin: diagnosis and health."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from protocol.registry import registry
from triggers.models import TriggerIdentity

from . import charts
from .selectors import diagnosis_get, health_get, user_find
from .services import ActionRefused, support_realtime_resend

console_required = permission_required("support.view_console", raise_exception=True)


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def _diagnosis_chart(d: Any) -> Any:
    lanes = [
        charts.Lane(
            "Matching events",
            [
                charts.Mark(
                    e.event.occurred_at,
                    "#2e8b57" if e.returned_at else "#e67e22",
                    f"{e.event.get_type_display()} {e.event.occurred_at:%Y-%m-%d %H:%M:%S}"
                    + (" · returned to IFTTT" if e.returned_at else " · not returned yet"),
                )
                for e in d.events
            ],
        ),
        charts.Lane(
            "IFTTT polls",
            [
                charts.Mark(
                    p.created_at,
                    "#4a7ab5" if p.status_code < 400 else "#c0392b",
                    f"{p.method} {p.created_at:%Y-%m-%d %H:%M:%S} → {p.status_code}, {p.items_returned or 0} item(s)"
                    + (" (Realtime)" if p.realtime else ""),
                    shape="tick",
                )
                for p in d.polls
            ],
        ),
        charts.Lane(
            "Refused (401)",
            [
                charts.Mark(p.created_at, "#c0392b", f"401 {p.created_at:%Y-%m-%d %H:%M:%S} {p.path}", shape="tick")
                for p in d.refused
            ],
        ),
    ]
    if d.deliveries is not None:
        lanes.append(
            charts.Lane(
                "Realtime",
                [charts.Mark(r.at, "#8e44ad", f"{r.status} {r.detail}") for r in d.deliveries if r.at is not None],
            )
        )
    return charts.timeline_svg(
        start=d.window_start, end=d.window_end, lanes=lanes, title="Matching events and IFTTT's polls over time"
    )


@console_required
def diagnosis_view(request: HttpRequest) -> HttpResponse:
    identity = request.GET.get("identity", "").strip()
    user_key = request.GET.get("user", "").strip()
    trigger = request.GET.get("trigger", "").strip()
    problem = ""
    diagnosis = None
    if identity or user_key or trigger:
        user = user_find(key=user_key) if user_key else None
        if user_key and user is None:
            problem = f"No user matches “{user_key}”. Search by email, username, public id or id."
        elif not identity and not trigger:
            problem = "Choose a trigger too, or paste IFTTT's trigger identity."
        elif trigger and trigger not in registry.triggers:
            problem = f"There is no trigger named “{trigger}”."
        else:
            diagnosis = diagnosis_get(identity=identity, user=user, trigger_slug=trigger)
            if diagnosis is None:
                problem = (
                    f"No trigger identity “{identity}” was ever polled. Check the id, or search by user and trigger."
                    if identity
                    else "Give a user as well as the trigger, or paste IFTTT's trigger identity."
                )
    context = _context(
        request,
        "Why didn't the Applet run?",
        form={"identity": identity, "user": user_key, "trigger": trigger},
        triggers=sorted(registry.triggers),
        problem=problem,
        d=diagnosis,
        chart=_diagnosis_chart(diagnosis) if diagnosis else None,
        can_resend=request.user.has_perm("support.resend_realtime"),
    )
    return render(request, "support/diagnosis.html", context, status=404 if problem and diagnosis is None else 200)


@require_POST
@permission_required("support.resend_realtime", raise_exception=True)
def realtime_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    identity = TriggerIdentity.objects.filter(pk=pk).first()
    if identity is None:
        messages.error(request, "That trigger identity no longer exists.")
        return HttpResponseRedirect(reverse("support:diagnosis"))
    try:
        support_realtime_resend(actor=request.user, identity=identity)
        messages.success(request, "A Realtime notification was sent: IFTTT should poll within a minute.")
    except ActionRefused as refused:
        messages.error(request, refused.message)
    return HttpResponseRedirect(f"{reverse('support:diagnosis')}?{urlencode({'identity': identity.identity})}")


@console_required
def health_view(request: HttpRequest) -> HttpResponse:
    health = health_get()
    context = _context(
        request,
        "IFTTT health, last 24 hours",
        health=health,
        endpoint_chart=charts.bars_svg(
            rows=[(e.endpoint, e.calls, e.errors) for e in health.endpoints], title="Calls and failures per endpoint"
        ),
        hourly_chart=charts.columns_svg(rows=health.hourly, title="Calls and failures per hour"),
    )
    return render(request, "support/health.html", context)
