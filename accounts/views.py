"""The pages people use: sign in, IFTTT's consent page, and their account page."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider import views as oauth_views
from oauth2_provider.models import get_application_model

from devices.models import SWITCHABLE_KINDS, EventSource
from devices.selectors import device_get_for_user, device_list
from devices.services import device_switch
from protocol.access import ifttt_access_revoke
from protocol.oauth import redirect_uri_registered

from .charts import activity_chart_build
from .selectors import account_activity_by_day, account_recent_runs, ifttt_connection_get

AUTHORIZE_PATH = "/oauth/authorize/"


def _is_authorize_url(url: str) -> bool:
    return url.startswith(AUTHORIZE_PATH)


class LoginView(auth_views.LoginView):
    """Sign in; when IFTTT sent the person here, say so before they type a password."""

    template_name = "registration/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["connecting_ifttt"] = _is_authorize_url(context.get("next") or "")
        return context


def lockout_response(request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any) -> HttpResponse:
    """What a throttled sign-in sees (AXES_LOCKOUT_CALLABLE): the login page, saying how long to wait."""
    cool_off = get_cool_off(request)
    username = get_client_username(request, credentials) or ""
    last_failure = (
        AccessAttempt.objects.filter(username=username, ip_address=get_client_ip_address(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    until = (last_failure or timezone.now()) + cool_off if cool_off else None
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    context = {
        "form": None,
        "next": next_url if _is_authorize_url(next_url) or next_url.startswith("/account") else "",
        "connecting_ifttt": _is_authorize_url(next_url),
        "locked_out": True,
        "lockout_username": username,
        "lockout_minutes": minutes,
        "lockout_until": until,
    }
    # 429 Too Many Requests, as django-axes answers a lockout.
    return render(request, "registration/login.html", context, status=429)


class AuthorizationView(oauth_views.AuthorizationView):
    """The consent page (template `oauth2_provider/authorize.html`).

    Differences from the toolkit's view: an unknown `client_id` or an unregistered `redirect_uri` is
    refused before anyone is asked to sign in (the toolkit asks for the password first, then says no);
    with `prompt=none` and nobody signed in, only a registered redirect URI is ever used; and a consent
    form posted back with an unknown `client_id` is a 400, not a 500.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "GET":
            client_id = request.GET.get("client_id", "")
            application = get_application_model().objects.filter(client_id=client_id).first() if client_id else None
            if application is None:
                return self._refuse("Unknown client." if client_id else "The link names no client (client_id).")
            redirect_uri = request.GET.get("redirect_uri")
            if redirect_uri is not None and not redirect_uri_registered(application, redirect_uri):
                return self._refuse("Mismatching redirect URI.")
        return super().dispatch(request, *args, **kwargs)

    def _refuse(self, description: str) -> HttpResponse:
        context = {"error": {"error": "invalid_request", "description": description}}
        return render(self.request, "oauth2_provider/authorize.html", context, status=400)

    def handle_no_permission(self) -> HttpResponse:
        if self.request.GET.get("prompt") == "none":
            application = (
                get_application_model().objects.filter(client_id=self.request.GET.get("client_id", "")).first()
            )
            if application is None or not redirect_uri_registered(application, self.request.GET.get("redirect_uri")):
                return self._refuse("Mismatching redirect URI.")
        return super().handle_no_permission()

    def form_valid(self, form: Any) -> HttpResponse:
        if not get_application_model().objects.filter(client_id=form.cleaned_data.get("client_id")).exists():
            return self._refuse("Unknown client.")
        return super().form_valid(form)


def _account_page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    user = request.user
    # A message about one device is shown beside it (where the person tapped, even on a phone);
    # the rest at the top of the page.
    by_device: dict[str, list[Any]] = {}
    general: list[Any] = []
    for message in messages.get_messages(request):
        tag = next((t for t in message.extra_tags.split() if t.startswith("device-")), "")
        (by_device.setdefault(tag.removeprefix("device-"), []) if tag else general).append(message)
    context = {
        "devices": list(device_list(user=user)),
        "device_messages": by_device,
        "page_messages": general,
        "runs": account_recent_runs(user=user),
        "switchable_kinds": [str(kind) for kind in SWITCHABLE_KINDS],
        "connection": ifttt_connection_get(user=user),
        "chart": activity_chart_build(account_activity_by_day(user=user)),
    }
    return render(request, "accounts/account.html", context, status=status)


def _back_to(anchor: str) -> HttpResponse:
    # 303: the browser follows with a GET, so reloading the page never re-sends the form.
    response = redirect(f"{reverse('account')}#{anchor}")
    response.status_code = 303
    return response


@require_GET
@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@require_POST
@login_required
def device_switch_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Switch one of the person's devices on or off, recorded as an event like any other change."""
    wanted = request.POST.get("on")
    if wanted not in ("1", "0"):
        messages.error(request, "Choose on or off for the device (the form sends on=1 or on=0).")
        return _account_page(request, status=400)
    device = device_get_for_user(user=request.user, public_id=public_id, kinds=SWITCHABLE_KINDS)
    if device is None:
        messages.error(request, "That device is not in your account, or it cannot be switched on and off.")
        return _account_page(request, status=404)
    if not device.online:
        messages.error(request, f"{device.name} is offline, so it cannot be switched. Check its power and Wi-Fi.")
        return _account_page(request, status=409)
    on = wanted == "1"
    device_switch(device=device, on=on, source=EventSource.ACCOUNT)
    messages.success(request, f"{device.name} is {'on' if on else 'off'}.", extra_tags=f"device-{device.public_id}")
    return _back_to(f"device-{device.public_id}")


@require_POST
@login_required
def ifttt_disconnect_view(request: HttpRequest) -> HttpResponse:
    removed = ifttt_access_revoke(user=request.user)
    if removed:
        messages.success(
            request,
            "IFTTT is disconnected: it can no longer see or switch your devices, and your Applets that use "
            "this service stop. To use them again, connect this service on ifttt.com.",
        )
    else:
        messages.info(request, "IFTTT was not connected to your account, so there was nothing to disconnect.")
    return _back_to("connections")
