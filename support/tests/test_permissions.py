"""The "Support" group: sees everything, runs only the staff actions, changes nothing else."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from support.services import SUPPORT_GROUP, support_group_ensure


def test_group_setup_is_idempotent(db: Any) -> None:
    first = set(support_group_ensure().permissions.values_list("codename", flat=True))
    call_command("support_setup", stdout=StringIO())
    group = Group.objects.get(name=SUPPORT_GROUP)
    assert set(group.permissions.values_list("codename", flat=True)) == first
    assert {"view_device", "view_apicall", "fire_test_event", "disconnect_ifttt"} <= first
    assert not [c for c in first if c.startswith(("add_", "change_", "delete_"))]


def test_support_can_view_but_not_change(support_client: Client, life: Any) -> None:
    assert support_client.get(reverse("admin:accounts_user_change", args=[life.user.pk])).status_code == 200
    response = support_client.post(
        reverse("admin:devices_device_change", args=[life.lamp.pk]),
        {"name": "Renamed", "kind": "light", "owner": life.user.pk},
    )
    assert response.status_code == 403
    life.lamp.refresh_from_db()
    assert life.lamp.name == "Desk lamp"
    assert support_client.get(reverse("admin:devices_device_delete", args=[life.lamp.pk])).status_code == 403
    assert support_client.get(reverse("admin:accounts_user_add")).status_code == 403
    assert (
        support_client.post(reverse("admin:auth_group_change", args=[support_group_ensure().pk]), {}).status_code == 403
    )


def test_support_cannot_grant_itself_more(support_client: Client, support_user: Any) -> None:
    response = support_client.post(
        reverse("admin:accounts_user_change", args=[support_user.pk]),
        {"username": support_user.username, "is_superuser": "on", "is_staff": "on"},
    )
    assert response.status_code == 403
    support_user.refresh_from_db()
    assert not support_user.is_superuser


def test_staff_outside_the_group_sees_nothing_and_can_do_nothing(
    client: Client, make_user: Callable[..., Any], life: Any
) -> None:
    client.force_login(make_user("intern", is_staff=True))
    assert client.get(reverse("support:diagnosis")).status_code == 403
    assert client.get(reverse("support:health")).status_code == 403
    assert client.get(reverse("admin:devices_device_changelist")).status_code == 403
    response = client.post(
        reverse("admin:devices_device_changelist"),
        {"action": "mark_offline", "_selected_action": [str(life.lamp.pk)], "index": "0"},
    )
    assert response.status_code == 403
    life.lamp.refresh_from_db()
    assert life.lamp.online


def test_end_users_cannot_reach_the_console(client: Client, life: Any) -> None:
    client.force_login(life.user)
    response = client.get(reverse("support:diagnosis"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_support_sees_the_actions_it_may_run(support_client: Client, life: Any) -> None:
    page = support_client.get(reverse("admin:devices_device_changelist")).content.decode()
    for action in ("fire_test_event", "mark_offline", "mark_online"):
        assert f'value="{action}"' in page
    assert 'value="delete_selected"' not in page


def test_the_admin_home_leads_support_to_the_console(support_client: Client) -> None:
    page = support_client.get(reverse("admin:index")).content.decode()
    assert reverse("support:diagnosis") in page and reverse("support:health") in page
