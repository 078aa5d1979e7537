"""The admin's script editor and "Test run"."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from connections.models import Connection, ScriptRun
from connections.tests.test_scripts import YOUTUBE_TO_SMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.force_login(admin)
    return client


@pytest.fixture
def connection():
    return Connection.objects.create(connection_id="conn-1", name="Videos to texts", script=YOUTUBE_TO_SMS)


def test_change_page_has_the_script_editor_and_a_test_run_link(staff, connection):
    page = staff.get(reverse("admin:connections_connection_change", args=[connection.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="script"' in html and "Trigger.ingredients" in html
    assert reverse("admin:connections_connection_test_run", args=[connection.pk]) in html


def test_test_run_records_the_calls_without_sending(staff, connection, connect_api):
    url = reverse("admin:connections_connection_test_run", args=[connection.pk])
    assert staff.get(url).status_code == 200
    rows = [{"title": f"T{i}", "url": f"https://v/{i}"} for i in range(3)]
    page = staff.post(
        url,
        {
            "trigger_id": "youtube.new_liked_video",
            "ingredients": json.dumps({"title": "Cats"}),
            "answers": "youtube.get_videos_from_search=200:" + json.dumps({"data": rows}),
            "user": "",
            "timezone": "Pacific Time (US & Canada)",
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Succeeded" in html
    run = ScriptRun.objects.get()
    assert run.is_test and run.connection == connection
    assert [c["id"] for c in run.calls] == ["youtube.get_videos_from_search"] + ["sms.send_me_text"] * 3
    assert "T2 https://v/2" in html
    assert connect_api.requests == []  # nothing went to IFTTT


def test_test_run_form_explains_bad_input(staff, connection):
    url = reverse("admin:connections_connection_test_run", args=[connection.pk])
    page = staff.post(
        url, {"trigger_id": "t.x", "ingredients": "{oops", "answers": "sms.send_me_text", "timezone": "Mars/Olympus"}
    )
    html = page.content.decode()
    assert "This is not valid JSON" in html
    assert "is not ID=STATUS[:JSON]" in html
    assert "is not a time zone" in html
    assert not ScriptRun.objects.exists()


def test_test_run_shows_a_failure(staff, connection):
    connection.script = 'console.log("about to fail"); null.boom;'
    connection.save()
    url = reverse("admin:connections_connection_test_run", args=[connection.pk])
    page = staff.post(url, {"trigger_id": "t.x", "ingredients": "{}", "answers": "", "timezone": "UTC"})
    html = page.content.decode()
    assert "Failed" in html and "TypeError" in html and "about to fail" in html
    assert "script.js:1:36" in html
    assert "1 | console.log(&quot;about to fail&quot;); null.boom;" in html


def test_test_run_answers_each_call_as_chosen_with_the_feature_context(staff, connection):
    connection.script = (
        'runAction("sms.send_me_text", {user_feature_id: Connection.userFeatureId}).then(r => {\n'
        "  console.log(Connection.currentFeatureName, r.statusCode, r.responseBody.code);\n"
        '  console.log(Meta.currentUserTime.format("YYYY-MM-DD HH:mm z"));\n'
        "});"
    )
    connection.save()
    url = reverse("admin:connections_connection_test_run", args=[connection.pk])
    page = staff.post(
        url,
        {
            "trigger_id": "smarthome.device_switched_on",
            "ingredients": "{}",
            "answers": "sms.send_me_text=422",
            "feature_name": "evening",
            "user_feature_id": "4da42aa6",
            "timezone": "Europe/Paris",
            "now": "2024-07-01 21:30",
        },
    )
    assert page.status_code == 200
    run = ScriptRun.objects.get()
    assert run.outcome == "succeeded", run.error
    assert [line["message"] for line in run.logs] == ["evening 422 invalid_parameters", "2024-07-01 21:30 CEST"]
    assert run.calls[0]["body"] == {"user_feature_id": "4da42aa6"}
    assert run.calls[0]["status_code"] == 422


def test_configuration_must_be_an_object(staff, connection):
    url = reverse("admin:connections_connection_change", args=[connection.pk])
    page = staff.post(
        url,
        {"connection_id": "conn-1", "name": "x", "script_enabled": "on", "script": "", "configuration": "[1]"},
    )
    assert "must be a JSON object" in page.content.decode()
    connection.refresh_from_db()
    assert connection.configuration == {}


def test_log_pages_open(staff, connection):
    for name in ("scriptrun", "webhookdelivery", "firedtrigger", "userconnection"):
        assert staff.get(reverse(f"admin:connections_{name}_changelist")).status_code == 200
