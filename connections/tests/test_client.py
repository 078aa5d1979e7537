"""The Connect API client against a local server answering as IFTTT does."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from conftest import free_port
from connections.client import (
    ConnectClient,
    ConnectForbidden,
    ConnectInvalidParameters,
    ConnectionDetails,
    ConnectNotFound,
    ConnectServerError,
    ConnectUnauthorized,
    ConnectUnreachable,
    Me,
    connect_url,
    query_page_parse,
)
from connections.models import ConnectApiCall

pytestmark = pytest.mark.django_db

USER = "user-public-id"


@pytest.fixture
def client(connect_api):
    connect_api.enabled_users.add(USER)
    return ConnectClient()


def test_every_call_carries_the_service_key(client, connect_api, settings):
    assert client.me() == Me(authentication_level="channel", service_id="smarthome", user_login="")
    request = connect_api.requests[-1]
    assert request.headers["IFTTT-Service-Key"] == settings.IFTTT_SERVICE_KEY
    assert len(request.headers["X-Request-ID"]) == 32


def test_me_for_a_user(client, connect_api):
    me = client.me(user_id=USER)
    assert (me.authentication_level, me.user_login) == ("user", USER)
    assert connect_api.requests[-1].query == {"user_id": USER}


def test_show_connection_puts_user_id_in_the_query_string(client, connect_api):
    details = client.connection_show(connection_id="conn-1", user_id=USER)
    assert isinstance(details, ConnectionDetails)
    assert details.user_status == "enabled"
    assert details.user_features[0].id == "uf-1"
    assert connect_api.requests[-1].query == {"user_id": USER}


def test_finding_a_user_feature_id(client):
    assert client.user_feature_id_find(connection_id="conn-1", user_id=USER, feature_id="f-1") == "uf-1"
    assert client.user_feature_id_find(connection_id="conn-1", user_id=USER) == "uf-1"  # the first, as IFTTT
    assert client.user_feature_id_find(connection_id="conn-1", user_id=USER, feature_id="f-9") is None


def test_provisional_access_code(client, connect_api):
    assert client.provisional_access_code_create(oauth_code="abc") == "pac-abc"
    assert (connect_api.requests[-1].path, connect_api.requests[-1].body) == (
        "/v2/provisional_access_code",
        {"oauth_code": "abc"},
    )


def test_connect_url():
    url = connect_url(
        connection_id="C 1", email="a@example.com", redirect_uri="https://s.example/done", code="pac", skip_config=True
    )
    assert url == (
        "https://ifttt.com/connect/C%201?email=a%40example.com&redirect_uri=https%3A%2F%2Fs.example%2Fdone"
        "&code=pac&skip_config=true"
    )
    assert (
        connect_url(connection_id="C1", email="a@example.com") == "https://ifttt.com/connect/C1?email=a%40example.com"
    )
    with pytest.raises(ValueError, match="email"):
        connect_url(connection_id="C1", email="")
    with pytest.raises(ValueError, match="redirect_uri"):
        connect_url(connection_id="C1", email="a@example.com", skip_config=True)


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
    assert options["channel"] == [{"label": "General", "value": "general"}, {"label": "Random", "value": "random"}]
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
    # IFTTT's docs put user_id in the body, its sample app in the query string: both are sent.
    assert request.query == {"user_id": USER}
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


def test_perform_query_sends_includes_with_every_page(client, connect_api):
    connect_api.query_rows["youtube.search"] = [{"title": f"v{i}"} for i in range(3)]
    list(
        client.query_perform_all(connection_id="conn-1", query_id="youtube.search", user_id=USER, includes=["versions"])
    )
    assert [r.body["includes"] for r in connect_api.calls("POST", "/perform")] == [["versions"], ["versions"]]


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


def test_an_action_run_answered_502_is_not_sent_again(client, connect_api):
    # IFTTT's docs: a 502 means the service behind the action failed; it may have acted.
    connect_api.answer_next("POST", "/run$", 502, {"type": "error", "code": "bad_gateway", "message": "Upstream"})
    with pytest.raises(ConnectServerError) as info:
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert info.value.status_code == 502 and info.value.message == "Upstream"
    assert len(connect_api.calls("POST", "/run")) == 1


def test_an_action_run_answered_503_is_sent_again(client, connect_api):
    # 503 and 429 say the request was not processed: safe to repeat.
    connect_api.answer_next("POST", "/run$", 503, {"type": "error", "code": "unavailable", "message": "Try later"})
    client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 2


def test_a_query_is_retried_through_5xx(client, connect_api):
    connect_api.query_rows["youtube.search"] = [{"title": "v0"}]
    connect_api.answer_next("POST", "/perform$", 502)
    connect_api.answer_next("POST", "/perform$", 500)
    page = client.query_perform(connection_id="conn-1", query_id="youtube.search", user_id=USER)
    assert page.data == [{"title": "v0"}]
    assert len(connect_api.calls("POST", "/perform")) == 3


def test_5xx_that_persists_on_a_read_raises_after_the_retries(client, connect_api):
    for _ in range(4):
        connect_api.answer_next("GET", "/conn-1$", 502, {"type": "error", "code": "bad_gateway", "message": "Upstream"})
    with pytest.raises(ConnectServerError):
        client.connection_show(connection_id="conn-1", user_id=USER)
    assert len(connect_api.calls("GET", "/conn-1")) == 4


def test_retry_after_is_honoured(connect_api):
    connect_api.enabled_users.add(USER)
    waits: list[float] = []
    connect_api.answer_next(
        "POST", "/run$", 429, {"type": "error", "code": "rate_limited"}, headers={"Retry-After": "7"}
    )
    ConnectClient(sleep=waits.append).action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 2
    assert waits and waits[0] >= 7


def test_4xx_is_never_retried(client, connect_api):
    connect_api.answer_next("POST", "/run$", 422, {"type": "error", "code": "invalid_parameters", "message": "Bad"})
    with pytest.raises(ConnectInvalidParameters):
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert len(connect_api.calls("POST", "/run")) == 1


def test_an_action_run_that_timed_out_is_not_sent_again(connect_api):
    connect_api.enabled_users.add(USER)
    connect_api.answer_next("POST", "/run$", 204, None, delay_s=0.6)
    client = ConnectClient(timeout_s=0.3, backoff_s=0.01)
    with pytest.raises(ConnectUnreachable) as info:
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert info.value.maybe_sent
    assert "not sent again" in info.value.message
    assert len(connect_api.calls("POST", "/run")) == 1


def test_a_query_that_timed_out_is_retried(connect_api):
    connect_api.enabled_users.add(USER)
    connect_api.query_rows["youtube.search"] = [{"title": "v0"}]
    connect_api.answer_next("POST", "/perform$", 200, {"type": "list", "data": []}, delay_s=0.6)
    client = ConnectClient(timeout_s=0.3, backoff_s=0.01)
    page = client.query_perform(connection_id="conn-1", query_id="youtube.search", user_id=USER)
    assert page.data == [{"title": "v0"}]
    assert len(connect_api.calls("POST", "/perform")) == 2


def test_nothing_listening_is_retried_even_for_an_action_then_unreachable():
    # A refused connection never reached anyone: repeating it cannot run the action twice.
    client = ConnectClient(base_url=f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01, timeout_s=0.5)
    with pytest.raises(ConnectUnreachable) as info:
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER)
    assert "after 3 attempt(s)" in info.value.message
    assert not info.value.maybe_sent


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("connect_calls_total", {"outcome": outcome}) or 0.0


def test_every_attempt_is_in_the_connections_api_log_and_counted(client, connect_api):
    before = {outcome: _count(outcome) for outcome in ("success", "client_error", "server_error")}
    connect_api.answer_next("POST", "/run$", 503, {"type": "error", "code": "unavailable", "message": "Try later"})
    client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id=USER, user_feature_id="uf-1")
    with pytest.raises(ConnectForbidden):
        client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id="stranger")
    rows = list(ConnectApiCall.objects.order_by("id"))
    assert [(r.method, r.path, r.user_id, r.user_feature_id, r.status, r.attempt) for r in rows] == [
        ("POST", "/v2/connections/conn-1/actions/sms.send_me_text/run", USER, "uf-1", 503, 1),
        ("POST", "/v2/connections/conn-1/actions/sms.send_me_text/run", USER, "uf-1", 204, 2),
        ("POST", "/v2/connections/conn-1/actions/sms.send_me_text/run", "stranger", "", 403, 1),
    ]
    assert {r.connection_id for r in rows} == {"conn-1"}
    assert rows[0].error == "Try later" and rows[2].error == "The user has not enabled this connection"
    assert rows[0].request_id == rows[1].request_id  # one call, two attempts
    assert _count("server_error") - before["server_error"] == 1
    assert _count("success") - before["success"] == 1
    assert _count("client_error") - before["client_error"] == 1


def test_a_missing_oauth_code_is_refused_before_sending(client, connect_api):
    with pytest.raises(ValueError):
        client.provisional_access_code_create(oauth_code="")
    assert connect_api.requests == []


# --- a script's calls ------------------------------------------------------------------------------


def _handler():
    import time

    from connections.services import connect_call_handler

    return connect_call_handler(connection_id="conn-1", user_id=USER, deadline=time.monotonic() + 10)


def test_a_scripts_action_answered_502_reaches_the_script_once(connect_api):
    connect_api.enabled_users.add(USER)
    connect_api.answer_next("POST", "/run$", 502, {"type": "error", "code": "bad_gateway", "message": "Upstream"})
    reply = _handler()("action", "sms.send_me_text", {"fields": {"message": "hi"}})
    assert (reply.status_code, reply.body["message"]) == (502, "Upstream")
    assert len(connect_api.calls("POST", "/run")) == 1


def test_a_scripts_action_that_timed_out_rejects_and_is_not_sent_again(connect_api, settings):
    settings.IFTTT_CONNECT_TIMEOUT = 0.3
    connect_api.enabled_users.add(USER)
    connect_api.answer_next("POST", "/run$", 204, None, delay_s=0.6)
    reply = _handler()("action", "sms.send_me_text", {})
    assert reply.error is not None and "not sent again" in reply.error
    assert len(connect_api.calls("POST", "/run")) == 1
    request = connect_api.calls("POST", "/run")[0]
    assert request.query == {"user_id": USER} and request.body == {"user_id": USER}
