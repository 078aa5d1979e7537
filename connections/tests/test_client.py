"""The Connect API client against a local server answering as IFTTT does."""

from __future__ import annotations

import pytest

from connections.client import (
    ConnectClient,
    ConnectForbidden,
    ConnectInvalidParameters,
    ConnectNotFound,
    ConnectServerError,
    ConnectUnauthorized,
    ConnectUnreachable,
    query_page_parse,
)

pytestmark = pytest.mark.django_db

USER = "user-public-id"


@pytest.fixture
def client(connect_api):
    connect_api.enabled_users.add(USER)
    return ConnectClient()


def test_every_call_carries_the_service_key(client, connect_api, settings):
    assert client.me()["type"] == "me"
    request = connect_api.requests[-1]
    assert request.headers["IFTTT-Service-Key"] == settings.IFTTT_SERVICE_KEY
    assert len(request.headers["X-Request-ID"]) == 32


def test_show_connection_puts_user_id_in_the_query_string(client, connect_api):
    details = client.connection_show(connection_id="conn-1", user_id=USER)
    assert details["user_status"] == "enabled"
    assert details["user_connection"]["user_features"][0]["id"] == "uf-1"
    assert connect_api.requests[-1].query == {"user_id": USER}


def test_update_user_connection_puts_the_configuration(client, connect_api):
    features = [{"feature_id": "f-1", "enabled": True, "user_fields": [{"field_id": "room", "value": "Kitchen"}]}]
    answer = client.user_connection_update(connection_id="conn-1", user_id=USER, user_features=features)
    request = connect_api.requests[-1]
    assert (request.method, request.path, request.query) == (
        "PUT",
        "/v2/connections/conn-1/user_connection",
        {"user_id": USER},
    )
    assert request.body == {"user_features": features}
    assert answer["user_features"] == features


def test_field_options(client, connect_api):
    options = client.field_options_list(connection_id="conn-1", kind="actions", type_id="slack.post", user_id=USER)
    assert [o["value"] for o in options["channel"]] == ["general", "random"]
    assert connect_api.requests[-1].path == "/v2/connections/conn-1/actions/slack.post/field_options"


def test_run_action_with_field_overrides_and_user_feature(client, connect_api):
    client.action_run(
        connection_id="conn-1",
        action_id="sms.send_me_text",
        user_id=USER,
        fields={"message": "overridden"},
        user_feature_id="4da42aa6-3858-4722-9ded-6a7ecdefd91f",
    )
    request = connect_api.requests[-1]
    assert request.path == "/v2/connections/conn-1/actions/sms.send_me_text/run"
    assert request.body == {
        "user_id": USER,
        "user_feature_id": "4da42aa6-3858-4722-9ded-6a7ecdefd91f",
        "fields": {"message": "overridden"},
    }


def test_run_action_without_user_feature_leaves_the_choice_to_ifttt(client, connect_api):
    client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert connect_api.requests[-1].body == {"user_id": USER}


@pytest.mark.parametrize("shape", ["next", "top"])
def test_perform_query_follows_the_cursor_in_both_documented_shapes(client, connect_api, shape):
    connect_api.cursor_shape = shape
    connect_api.query_rows["youtube.search"] = [{"title": f"v{i}"} for i in range(5)]
    rows = list(client.query_perform_all(connection_id="conn-1", query_id="youtube.search", user_id=USER))
    assert [r["title"] for r in rows] == ["v0", "v1", "v2", "v3", "v4"]
    cursors = [r.body.get("cursor") for r in connect_api.calls("POST", "/perform")]
    assert cursors == [None, "2", "4"]


def test_perform_query_limit_stops_early(client, connect_api):
    connect_api.query_rows["youtube.search"] = [{"title": f"v{i}"} for i in range(10)]
    rows = list(client.query_perform_all(connection_id="conn-1", query_id="youtube.search", user_id=USER, limit=3))
    assert len(rows) == 3
    assert [r.body["limit"] for r in connect_api.calls("POST", "/perform")] == [3, 1]


def test_query_page_parse_reads_next_fields():
    page = query_page_parse({"type": "list", "data": [1], "next": {"fields": {"folder": "x"}, "cursor": "abc"}})
    assert (page.cursor, page.next_fields, page.data) == ("abc", {"folder": "x"}, [1])
    last = query_page_parse({"type": "list", "data": []})
    assert last.cursor is None


def test_wrong_key_is_a_typed_401(connect_api):
    with pytest.raises(ConnectUnauthorized) as info:
        ConnectClient(service_key="not-the-key").me()
    assert info.value.status_code == 401 and info.value.message == "Invalid service key"


def test_unknown_connection_is_a_typed_404_with_ifttts_message(client):
    with pytest.raises(ConnectNotFound) as info:
        client.connection_show(connection_id="nope")
    assert info.value.code == "not_found"
    assert info.value.message == "Unknown connection id"


def test_user_who_never_enabled_is_a_typed_403(client):
    with pytest.raises(ConnectForbidden):
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id="stranger")


def test_invalid_dropdown_value_is_a_422_carrying_the_details(client):
    with pytest.raises(ConnectInvalidParameters) as info:
        client.action_run(connection_id="conn-1", action_id="slack.post", user_id=USER, fields={"channel": "nope"})
    assert info.value.details == [{"parameter": "/fields/channel", "message": "Not a valid option for this field."}]
    assert "/fields/channel" in str(info.value)


def test_5xx_is_retried_until_success(client, connect_api):
    connect_api.answer_next("POST", "/run$", 503, {"type": "error", "code": "unavailable", "message": "Try later"})
    connect_api.answer_next("POST", "/run$", 500)
    client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 3


def test_5xx_that_persists_raises_after_the_retries(client, connect_api):
    for _ in range(4):
        connect_api.answer_next("POST", "/run$", 502, {"type": "error", "code": "bad_gateway", "message": "Upstream"})
    with pytest.raises(ConnectServerError) as info:
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert info.value.status_code == 502 and info.value.message == "Upstream"
    assert len(connect_api.calls("POST", "/run")) == 4


def test_4xx_is_never_retried(client, connect_api):
    connect_api.answer_next("POST", "/run$", 422, {"type": "error", "code": "invalid_parameters", "message": "Bad"})
    with pytest.raises(ConnectInvalidParameters):
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 1


def test_timeout_is_retried_then_succeeds(connect_api):
    connect_api.enabled_users.add(USER)
    connect_api.answer_next("POST", "/run$", 204, None, delay_s=0.6)
    client = ConnectClient(timeout_s=0.3, backoff_s=0.01)
    client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 2


def test_nothing_listening_is_unreachable_after_retries(settings):
    client = ConnectClient(base_url="http://127.0.0.1:8549", retries=2, backoff_s=0.01, timeout_s=0.5)
    with pytest.raises(ConnectUnreachable) as info:
        client.me()
    assert "after 3 attempt(s)" in info.value.message
