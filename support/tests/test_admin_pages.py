"""Every admin page support uses renders, with its filters and searches, and shows no secret."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import AccessToken, Application

from devices.services import device_api_key_issue
from protocol.models import ApiCall
from protocol.tokens import token_digest

APPS = ("accounts", "devices", "triggers", "actions", "iftttsvc", "oauth2_provider", "support", "admin")
MODELS = sorted(
    f"{model._meta.app_label}.{model._meta.model_name}"
    for model in admin.site._registry
    if model._meta.app_label in APPS
)


def _changelist(label: str) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_changelist")


@pytest.mark.parametrize("label", MODELS)
def test_every_change_list_and_change_page_renders_for_support(support_client: Client, life: Any, label: str) -> None:
    response = support_client.get(_changelist(label))
    assert response.status_code == 200, label
    app, model_name = label.split(".")
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    obj = model._default_manager.order_by("pk").first()
    if obj is not None:
        page = support_client.get(reverse(f"admin:{app}_{model_name}_change", args=[obj.pk]))
        assert page.status_code == 200, label
        assert life.token not in page.content.decode()
    assert life.token not in response.content.decode()


@pytest.mark.parametrize(
    ("label", "query"),
    [
        ("accounts.user", "q=carol@example.com"),
        ("devices.device", "q=desk lamp"),
        ("devices.device", "kind__exact=light&online__exact=1"),
        ("devices.deviceevent", "type__exact=temperature"),
        ("devices.deviceevent", "q=carol@example.com"),
        ("triggers.triggeridentity", "q=ti-lamp-on"),
        ("triggers.triggeridentity", "trigger_slug=device_switched_on&state=live"),
        ("actions.actionrun", "q=req-run-1"),
        ("actions.actionrun", "status__exact=skipped&action_slug=switch_on"),
        ("iftttsvc.apicall", "q=req-poll-1"),
        ("iftttsvc.apicall", "endpoint=trigger-poll&status=ok&realtime__exact=0"),
        ("iftttsvc.apicall", "q=carol@example.com"),
    ],
)
def test_searches_and_filters_find_the_row(support_client: Client, life: Any, label: str, query: str) -> None:
    response = support_client.get(f"{_changelist(label)}?{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_list, f"{label}?{query} found nothing"


def test_user_page_shows_the_users_ifttt_life_inline(support_client: Client, life: Any) -> None:
    page = support_client.get(reverse("admin:accounts_user_change", args=[life.user.pk])).content.decode()
    for text in ("Desk lamp", "Hall thermostat", "ti-lamp-on", "temperature_rises_above", "req-poll-1", "switch_on"):
        assert text in page, text
    assert "IFTTT connection (tokens)" in page
    assert "Last used by IFTTT" in page


def test_inlines_show_only_the_newest_rows(support_client: Client, life: Any) -> None:
    ApiCall.objects.bulk_create(
        ApiCall(
            method="POST",
            path="/ifttt/v1/status",
            endpoint="status",
            status_code=200,
            duration_ms=1,
            user=life.user,
            request_id=f"bulk-{i:03d}",
        )
        for i in range(30)
    )
    page = support_client.get(reverse("admin:accounts_user_change", args=[life.user.pk])).content.decode()
    assert "bulk-029" in page
    assert "bulk-000" not in page  # older than the newest ten


def test_no_secret_is_shown(support_client: Client, life: Any) -> None:
    key = device_api_key_issue(device=life.lamp)
    device_page = support_client.get(reverse("admin:devices_device_change", args=[life.lamp.pk])).content.decode()
    assert key not in device_page
    assert life.lamp.api_key_hash not in device_page
    assert key[:10] in device_page  # the prefix tells keys apart
    token = AccessToken.objects.get(token_checksum=token_digest(life.token))
    for url in (
        reverse("admin:support_iftttaccesstoken_changelist"),
        reverse("admin:support_iftttaccesstoken_change", args=[token.pk]),
    ):
        assert life.token not in support_client.get(url).content.decode()
    application = Application.objects.get()
    app_page = support_client.get(reverse("admin:oauth2_provider_application_change", args=[application.pk]))
    assert app_page.status_code == 200
    assert application.client_secret not in app_page.content.decode()
    assert "field-client_secret" not in app_page.content.decode()


def test_change_lists_never_count_the_whole_table(support_client: Client, life: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert support_client.get(_changelist("iftttsvc.apicall")).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "expected the capped count"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_search_by_email_finds_only_that_users_rows(support_client: Client, life: Any, make_user: Any) -> None:
    other = make_user("dave")
    ApiCall.objects.create(
        method="GET", path="/ifttt/v1/user/info", endpoint="user-info", status_code=200, duration_ms=1, user=other
    )
    response = support_client.get(f"{_changelist('iftttsvc.apicall')}?q=carol@example.com")
    users = {call.user_id for call in response.context["cl"].result_list}
    assert users == {life.user.pk}


def test_the_console_is_branded_and_starts_from_supports_questions(support_client: Client) -> None:
    page = support_client.get("/admin/").content.decode()
    assert "Smart Home support" in page
    assert "Django administration" not in page and "Django site admin" not in page
    for section in ("Find a person", "Why didn't an Applet run?", "Their devices and Applets", "Fix it"):
        assert section in page
    for code_name in (">Axes<", "Django OAuth Toolkit", "Api calls"):
        assert code_name not in page
    assert page.lower().count("support console") == 0


def test_a_persons_page_has_one_timeline_with_links(admin_client_: Client, life: Any) -> None:
    from devices.models import EventSource
    from devices.services import device_switch

    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    page = admin_client_.get(f"/admin/accounts/user/{life.user.pk}/change/").content.decode()
    timeline = page.split('id="person-timeline"')[1].split("</details>")[0]
    assert "Desk lamp: Switched on, from Device API" in timeline  # a device event
    assert "IFTTT POST trigger-poll device_switched_on → 200" in timeline  # a poll
    assert "Desk lamp is offline" in timeline  # the skipped action run
    assert f'href="/admin/actions/actionrun/{life.run.pk}/change/"' in timeline


def test_a_token_without_expiry_says_never(admin_client_: Client, life: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    AccessToken.objects.filter(user=life.user).update(expires=timezone.now() + timedelta(days=36500))
    page = admin_client_.get(f"/admin/accounts/user/{life.user.pk}/change/").content.decode()
    assert "never expires" in page and "2126" not in page


def test_a_persons_trigger_identities_read_as_names(admin_client_: Client, life: Any) -> None:
    page = admin_client_.get(f"/admin/accounts/user/{life.user.pk}/change/").content.decode()
    assert "Which device? Desk lamp (Office)" in page
    assert f"{{&quot;device&quot;: &quot;{life.lamp.public_id}" not in page
