"""The support console's own pages, inside the admin: diagnosis and health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from accounts.charts import BarChart, Lane, Mark, Series, Timeline, bar_chart_build, timeline_build
from accounts.formatting import when
from protocol.registry import registry
from triggers.models import TriggerIdentity

from .selectors import Health, diagnosis_get, health_get, person_diagnose, user_find
from .services import ActionRefused, support_realtime_resend

console_required = permission_required("support.view_console", raise_exception=True)


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


TIMELINE_LEGEND = [
    Series("shown", "Event shown to IFTTT"),
    Series("waiting", "Event not shown yet"),
    Series("poll", "IFTTT's poll"),
    Series("refused", "Refused call (401)"),
    Series("realtime", "Realtime notification"),
]


def _diagnosis_chart(d: Any) -> Timeline:
    lanes = [
        Lane(
            "Matching events",
            [
                Mark(
                    e.event.occurred_at,
                    "shown" if e.returned_at else "waiting",
                    f"{e.event.get_type_display()}, {when(e.event.occurred_at)}"
                    + (" · returned to IFTTT" if e.returned_at else " · not returned yet"),
                )
                for e in d.events
            ],
        ),
        Lane(
            "IFTTT's polls",
            [
                Mark(
                    p.created_at,
                    "poll" if p.status_code < 400 else "refused",
                    f"{p.method} {when(p.created_at)} → {p.status_code}, {p.items_returned or 0} item(s)"
                    + (" (after a Realtime notification)" if p.realtime else ""),
                )
                for p in d.polls
            ],
        ),
        Lane(
            "Refused (401)",
            [Mark(p.created_at, "refused", f"401 at {when(p.created_at)}: {p.path}") for p in d.refused],
        ),
    ]
    if d.deliveries is not None:
        lanes.append(
            Lane(
                "Realtime",
                [Mark(r.at, "realtime", f"{r.status} {r.detail}") for r in d.deliveries if r.at is not None],
            )
        )
    return timeline_build(
        title="Matching events and IFTTT's polls over time",
        start=d.window_start,
        end=d.window_end,
        lanes=lanes,
        legend=TIMELINE_LEGEND,
    )


@console_required
def diagnosis_view(request: HttpRequest) -> HttpResponse:
    identity = request.GET.get("identity", "").strip()
    user_key = request.GET.get("user", "").strip()
    trigger = request.GET.get("trigger", "").strip()
    problem = ""
    diagnosis = None
    person = None
    if identity or user_key or trigger:
        user = user_find(key=user_key) if user_key else None
        if user_key and user is None:
            problem = f"No one matches “{user_key}”. Search by email, username, public id or id."
        elif trigger and trigger not in registry.triggers:
            problem = f"There is no trigger named “{trigger}”."
        elif not identity and user is None:
            problem = (
                "Enter the person (email, username or id) as well as the trigger, or paste IFTTT's trigger identity."
            )
        elif not identity and not trigger:
            person = person_diagnose(user=user)
        else:
            diagnosis = diagnosis_get(identity=identity, user=user, trigger_slug=trigger)
            if diagnosis is None:
                problem = f"IFTTT never polled a trigger identity “{identity}”. Check the id, or search by person."
    context = _context(
        request,
        "Why didn't an Applet run?",
        form={"identity": identity, "user": user_key, "trigger": trigger},
        triggers=sorted((spec.label, slug) for slug, spec in registry.triggers.items()),
        problem=problem,
        d=diagnosis,
        person=person,
        chart=_diagnosis_chart(diagnosis) if diagnosis else None,
        can_resend=request.user.has_perm("support.resend_realtime"),
    )
    status = 404 if problem and diagnosis is None and person is None else 200
    return render(request, "support/diagnosis.html", context, status=status)


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


HEALTH_SERIES = [
    Series("ok", "Answered"),
    Series("refused", "Refused (4xx: the caller's request)"),
    Series("failed", "Failed (5xx: our fault)"),
]


def _hourly_chart(health: Health) -> BarChart:
    return bar_chart_build(
        title="IFTTT's calls per hour, last 24 hours",
        y_label="Calls",
        x_label="Hour (UTC)",
        series=HEALTH_SERIES,
        columns=[
            (f"{hour:%H}:00", f"{when(hour)} to {hour + timedelta(hours=1):%H:%M}", counts)
            for hour, counts in health.hourly
        ],
        label_every=3,
        unit=("call", "calls"),
        period="in the last 24 hours",
    )


@console_required
def health_view(request: HttpRequest) -> HttpResponse:
    health = health_get()
    context = _context(request, "IFTTT health, last 24 hours", health=health, hourly_chart=_hourly_chart(health))
    return render(request, "support/health.html", context)
