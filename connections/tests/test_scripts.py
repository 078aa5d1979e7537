"""Runtime scripts: IFTTT's documented API and examples, the sandbox's walls and limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from connections.models import Connection, FiredTrigger, ScriptRun, UserConnection, WebhookDelivery
from connections.runtime.local import Answer, recording_handler
from connections.sandbox import CallReply, ScriptSetup, script_execute
from connections.services import connect_call_handler, fired_trigger_script_run, script_test_run
from connections.timezones import zone_resolve

pytestmark = pytest.mark.django_db

USER = "user-public-id"
FEATURE = "f98de900-fe18-4fd2-b42b-422761d030a9"

YOUTUBE_TO_SMS = """
const likedVidTitle = Trigger.ingredients.title;

const promise = performQuery("youtube.get_videos_from_search", { fields: {search_query: likedVidTitle}, limit: 3});

promise.then((response) => {
  response.responseBody.data.forEach(video => {
    runAction("sms.send_me_text", { fields: { message: `${video.title} ${video.url}` }});
  });
});
"""


def setup(script, *, ingredients=None, now=None, zone="America/Los_Angeles"):
    moment = now or datetime.now(tz=UTC)
    return ScriptSetup(
        script=script,
        trigger_id="youtube.new_liked_video",
        ingredients=ingredients if ingredients is not None else {"title": "Cats", "url": "https://y/1"},
        service_user_id=USER,
        feature_name="yp6zrl2tpd",
        user_feature_id=FEATURE,
        configuration={"foo": "bar"},
        now_ms=int(moment.timestamp() * 1000),
        zone=zone,
    )


def answering(rows_by_query=None):
    """Actions answer 204; each query answers its rows, as the Connect API would."""
    return recording_handler(
        {
            "a.b": [Answer(status=204, body={})],
            **{
                qid: [Answer(status=200, body={"type": "list", "data": rows})]
                for qid, rows in (rows_by_query or {}).items()
            },
        }
    )


def run(script, handler=None, timeout_s=5.0, **kw):
    return script_execute(setup=setup(script, **kw), handler=handler or answering(), timeout_s=timeout_s)


@pytest.fixture
def connect(connect_api):
    connect_api.enabled_users.add(USER)
    return connect_api


def connect_handler():
    return connect_call_handler(connection_id="conn-1", user_id=USER, deadline=time.monotonic() + 10)


# --- IFTTT's documented examples, against the Connect API stand-in -----------------------------


def test_youtube_to_sms_example(connect):
    connect.page_size = 10
    connect.query_rows["youtube.get_videos_from_search"] = [
        {"title": f"Cats {i}", "url": f"https://y/{i}"} for i in range(5)
    ]
    result = run(YOUTUBE_TO_SMS, connect_handler())
    assert result.outcome == "succeeded", result.error
    query = connect.calls("POST", "/perform")
    assert query[0].body == {"fields": {"search_query": "Cats"}, "limit": 3, "user_id": USER}
    sent = [r.body["fields"]["message"] for r in connect.calls("POST", "/run")]
    assert sent == ["Cats 0 https://y/0", "Cats 1 https://y/1", "Cats 2 https://y/2"]
    assert [(c.kind, c.status_code) for c in result.calls] == [("query", 200)] + [("action", 204)] * 3


def test_limit_query_results(connect):
    connect.page_size = 10
    connect.query_rows["youtube.get_videos_from_search"] = [{"title": str(i)} for i in range(8)]
    result = run(
        'performQuery("youtube.get_videos_from_search", { limit: 3 })\n'
        "  .then(r => console.log(r.statusCode, r.responseBody.data.length));",
        connect_handler(),
    )
    assert result.logs == [{"level": "log", "message": "200 3"}]


def test_override_default_fields(connect):
    result = run('runAction("sms.send_me_text", { fields: { message: "overriden" } });', connect_handler())
    assert result.outcome == "succeeded"
    assert connect.calls("POST", "/run")[0].body == {"fields": {"message": "overriden"}, "user_id": USER}


def test_run_in_the_current_user_feature(connect):
    run('runAction("sms.send_me_text", { user_feature_id: Connection.userFeatureId });', connect_handler())
    assert connect.calls("POST", "/run")[0].body == {"user_feature_id": FEATURE, "user_id": USER}


def test_connect_errors_resolve_with_their_status_and_body(connect):
    result = run(
        '(async () => { const r = await runAction("slack.post", {fields: {channel: "nope"}});\n'
        "console.log(r.statusCode, r.responseBody.code, r.responseBody.details[0].parameter); })();",
        connect_handler(),
    )
    assert result.logs[0]["message"] == "422 invalid_parameters /fields/channel"
    assert result.calls[0].status_code == 422


def test_a_5xx_is_retried_before_the_script_sees_it(connect):
    connect.answer_next("POST", "/run$", 503)
    result = run('runAction("sms.send_me_text").then(r => console.log(r.statusCode));', connect_handler())
    assert result.logs[0]["message"] == "204"
    assert len(connect.calls("POST", "/run")) == 2


def test_unreachable_connect_api_rejects_the_promise(settings):
    settings.IFTTT_CONNECT_URL = "http://127.0.0.1:8548"
    settings.IFTTT_CONNECT_RETRIES = 0
    result = run(
        'runAction("sms.send_me_text").then(() => console.log("sent"), e => console.log("rejected:", e.message));',
        connect_handler(),
    )
    assert result.outcome == "succeeded"
    assert result.logs[0]["message"].startswith("rejected: IFTTT's Connect API did not answer")
    assert result.calls[0].error


# --- the documented globals --------------------------------------------------------------------


def test_globals_match_the_documented_api():
    script = """
    console.log(Trigger.id, Trigger.ingredients.title);
    console.log(Connection.serviceUserId, Connection.currentFeatureName, Connection.userFeatureId);
    console.log(Connection.configuration.foo);
    console.log(typeof runAction("a.b").then, typeof performQuery("a.q").then);
    """
    result = run(script)
    assert [line["message"] for line in result.logs] == [
        "youtube.new_liked_video Cats",
        f"{USER} yp6zrl2tpd {FEATURE}",
        "bar",
        "function function",
    ]


def test_current_user_time_is_in_the_users_zone():
    # 2024-07-01 03:04:05.006 UTC is Sunday 30 June, 20:04 in Los Angeles (PDT, -07:00).
    moment = datetime(2024, 7, 1, 3, 4, 5, 6000, tzinfo=UTC)
    script = """
    const t = Meta.currentUserTime;
    console.log(t.format());
    console.log(t.format("dddd, MMMM Do YYYY, h:mm:ss a [in] z"));
    console.log(t.hour(), t.minute(), t.day(), t.isoWeekday(), t.date(), t.month(), t.year(), t.utcOffset());
    console.log(t.toISOString(), t.unix(), t.format("HH:mm ZZ E"));
    """
    result = run(script, now=moment)
    assert [line["message"] for line in result.logs] == [
        "2024-06-30T20:04:05-07:00",
        "Sunday, June 30th 2024, 8:04:05 pm in PDT",
        "20 4 0 7 30 5 2024 -420",
        "2024-07-01T03:04:05.006Z 1719803045 20:04 -0700 7",
    ]


def test_rails_zone_names_map_to_iana():
    assert zone_resolve("Pacific Time (US & Canada)").key == "America/Los_Angeles"
    assert zone_resolve("Kyiv").key == "Europe/Kiev"
    assert zone_resolve("Europe/Paris").key == "Europe/Paris"
    assert zone_resolve("Nowhere Standard Time").key == "America/Los_Angeles"  # IFTTT's default


def test_globals_cannot_be_changed_by_the_script():
    result = run('"use strict"; Trigger.ingredients.title = "x";')
    assert result.outcome == "failed"
    assert "read only" in result.error or "Cannot assign" in result.error


# --- Promise semantics, timers, console --------------------------------------------------------


def test_promise_order_and_async_await():
    script = """
    console.log("start");
    const q = performQuery("a.q");
    q.then(r => console.log("then", r.responseBody.data.length));
    Promise.all([runAction("a.one"), runAction("a.two")]).then(rs => console.log("all", rs.map(r => r.statusCode)));
    (async () => {
      const r = await q;
      console.log("awaited", r.statusCode);
      setTimeout(() => console.log("timer", Trigger.id), 10);
      console.log("end of async body");
    })();
    console.log("end of script body");
    """
    result = run(script, answering({"a.q": [{"n": 1}, {"n": 2}]}))
    assert result.outcome == "succeeded", result.error
    assert [line["message"] for line in result.logs] == [
        "start",
        "end of script body",
        # All three answers settle in one turn: q's reactions run in the order they were attached,
        # and Promise.all needs one more tick to combine its two.
        "then 2",
        "awaited 200",
        "end of async body",
        "all [200,200]",
        "timer youtube.new_liked_video",
    ]
    assert [c.id for c in result.calls] == ["a.q", "a.one", "a.two"]


def test_console_formats_values():
    result = run('console.log("n", 1, {a: [1, 2]}, null, undefined); console.error(new Error("bad").message);')
    assert result.logs == [
        {"level": "log", "message": 'n 1 {"a":[1,2]} null undefined'},
        {"level": "error", "message": "bad"},
    ]


def test_errors_are_recorded_as_failures():
    thrown = run('runAction("a.b"); throw new Error("boom");')
    assert thrown.outcome == "failed" and "Error: boom" in thrown.error
    assert [c.id for c in thrown.calls] == ["a.b"]  # what ran before the error is still recorded
    in_callback = run('runAction("a.b").then(() => { null.x; });')
    assert in_callback.outcome == "failed"
    assert "Uncaught error in a Promise callback: TypeError" in in_callback.error
    caught = run('runAction("a.b").then(() => { null.x; }).catch(e => console.log("caught", e.name));')
    assert caught.outcome == "succeeded" and caught.logs[0]["message"] == "caught TypeError"
    syntax = run("const = 1")
    assert syntax.outcome == "failed" and syntax.error.startswith("SyntaxError: Unexpected token")
    assert (syntax.error_line, syntax.error_column) == (1, 7)


def test_bad_call_arguments_reject_with_a_clear_message():
    result = run(
        "runAction(42).catch(e => console.log(e.message));\n"
        'performQuery("a.q", [1]).catch(e => console.log(e.message));'
    )
    assert [line["message"] for line in result.logs] == [
        'runAction needs an id such as "sms.send_me_text" (service.slug, lowercase letters, digits and _), got 42',
        "performQuery: the request body must be an object such as {fields: {...}}",
    ]
    assert result.calls == []


def test_calls_per_run_are_capped():
    result = run('for (let i = 0; i < 60; i++) runAction("a.b").catch(e => console.log(e.message));')
    assert len(result.calls) == 50
    assert len(result.logs) == 10
    assert "the most one run may make" in result.logs[0]["message"]


def test_console_output_is_bounded():
    result = run('for (let i = 0; i < 2000; i++) console.log("line", i);')
    assert len(result.logs) == 500 and result.logs_dropped == 1500


# --- the sandbox's walls -------------------------------------------------------------------------

ESCAPES = {
    "require": "require('fs').readFileSync('/etc/passwd')",
    "process": "process.exit(1)",
    "fetch": "fetch('http://127.0.0.1:8500/')",
    "XMLHttpRequest": "new XMLHttpRequest()",
    "import": "import('fs').then(fs => fs.readFileSync('/etc/passwd'))",
    "Function constructor": "Function('return process')().exit()",
    "constructor chain": "this.constructor.constructor('return require')()('child_process')",
    "globalThis": "globalThis.process.mainModule.require('child_process')",
    "prototype chain": "Object.getPrototypeOf(runAction).constructor('return fetch')()('http://x')",
    "eval": "eval('require')('os')",
    "raw memory": "new ArrayBuffer(2 ** 31)",
    "WebAssembly": "WebAssembly.compile(new Uint8Array([0]))",
}


@pytest.mark.parametrize("attempt", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_attempts_fail_inside_the_sandbox(attempt, connect):
    result = run(attempt, connect_handler())
    assert result.outcome == "failed"
    assert any(kind in result.error for kind in ("ReferenceError", "TypeError", "SyntaxError")), result.error
    assert result.calls == []
    assert connect.requests == []


def test_the_global_object_offers_nothing_beyond_the_documented_api():
    result = run("console.log(Object.getOwnPropertyNames(globalThis).join(','));")
    names = set(result.logs[0]["message"].split(","))
    for forbidden in (
        "require",
        "process",
        "fetch",
        "XMLHttpRequest",
        "module",
        "Buffer",
        "WebAssembly",
        "ArrayBuffer",
        "SharedArrayBuffer",
        "Atomics",
        "Deno",
        "Bun",
        "importScripts",
    ):
        assert forbidden not in names
    assert {"Meta", "Trigger", "Connection", "runAction", "performQuery", "console", "setTimeout"} <= names


def test_runs_do_not_share_state():
    run("globalThis.leak = 'secret'; Array.prototype.map = () => 'hijacked';")
    result = run("console.log(typeof leak, [1].map(x => x + 1)[0]);")
    assert result.logs[0]["message"] == "undefined 2"


# --- limits ----------------------------------------------------------------------------------------


def test_infinite_loop_is_stopped_at_the_time_limit():
    result = run('console.log("before"); while (true) {}', timeout_s=1.0)
    assert result.outcome == "timed_out"
    assert "longer than the 1 s limit" in result.error
    assert result.logs == [{"level": "log", "message": "before"}]
    assert run('console.log("next")').logs[0]["message"] == "next"


def test_a_loop_after_an_await_is_stopped_too():
    script = 'console.log("before"); runAction("a.b").then(() => { console.log("answered"); while (true) {} });'
    result = run(script, timeout_s=1.0)
    assert result.outcome == "timed_out"
    assert [c.id for c in result.calls] == ["a.b"]
    # V8 cannot interrupt a loop in a microtask, so the sandbox process is replaced, and what the
    # stuck step printed goes with it; everything before it is kept.
    assert result.logs == [{"level": "log", "message": "before"}]
    assert "output from its last step was lost" in result.error
    assert run('console.log("next")').logs[0]["message"] == "next"


def test_never_ending_timers_are_stopped_at_the_time_limit():
    result = run("function tick() { setTimeout(tick, 50); } tick();", timeout_s=1.0)
    assert result.outcome == "timed_out"


def test_the_default_limit_is_ifttts_ten_seconds(settings):
    assert settings.CONNECTIONS_SCRIPT_TIMEOUT == 10.0


BOMBS = {
    "objects": "const a = []; while (true) a.push({x: Math.random()});",
    "strings": "const a = []; for (let i = 0; ; i++) a.push('x'.repeat(1e6) + i);",
    "one huge array": "new Array(2 ** 30).fill(0);",
    "properties": "const o = {}; for (let i = 0; ; i++) o['k' + i] = i;",
}


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_memory_bombs_are_stopped_and_the_next_run_works(bomb):
    # Well past IFTTT's 10 s: on a busy machine a bomb can take many seconds to reach the memory cap, and
    # what this checks is the memory limit, not the time limit.
    result = run(f'runAction("a.before").then(() => {{ {bomb} }});', timeout_s=30.0)
    assert result.outcome == "memory_exceeded", (result.outcome, result.error)
    assert "memory limit" in result.error
    assert [c.id for c in result.calls] == ["a.before"]
    after = run('console.log("still here")')
    assert after.outcome == "succeeded" and after.logs[0]["message"] == "still here"


def test_a_handler_failure_ends_the_run_and_reaches_the_caller():
    def broken(kind, call_id, body):
        raise RuntimeError("database down")

    # A handler answers every outcome it expects with a CallReply; anything else is not the script's
    # doing, so it is not turned into a rejection the script could swallow.
    with pytest.raises(RuntimeError, match="database down"):
        run('runAction("a.b").catch(e => console.log("rejected", e.message));', broken)
    assert run('console.log("next")').logs[0]["message"] == "next"


def test_overhead_excludes_connect_time():
    def slow(kind, call_id, body):
        time.sleep(0.2)
        return CallReply(status_code=204, body={})

    result = run('runAction("a.b");', slow)
    assert result.duration_ms >= 200
    assert result.overhead_ms < result.duration_ms - 150


# --- recorded runs -------------------------------------------------------------------------------


def test_test_run_records_the_calls_without_sending(connect, make_user):
    connection = Connection.objects.create(connection_id="conn-1", script=YOUTUBE_TO_SMS)
    rows = [{"title": f"T{i}", "url": f"u{i}"} for i in range(3)]
    answers = {"youtube.get_videos_from_search": [Answer(status=200, body={"data": rows})]}
    record = script_test_run(
        connection=connection,
        script=connection.script,
        trigger_id="youtube.new_liked_video",
        ingredients={"title": "Dogs"},
        answers=answers,
        user=make_user("bob"),
        zone_name="Tokyo",
    )
    assert record.is_test and record.outcome == "succeeded"
    assert [c["id"] for c in record.calls] == ["youtube.get_videos_from_search"] + ["sms.send_me_text"] * 3
    assert all(c["sent"] is False for c in record.calls)
    assert record.calls[1]["body"] == {"fields": {"message": "T0 u0"}}
    assert connect.requests == []


def test_a_script_that_kills_its_sandbox_is_recorded(make_user, settings):
    user = make_user("carol")
    connection = Connection.objects.create(connection_id="conn-1", script="new Array(2 ** 30).fill(0);")
    state = UserConnection.objects.create(connection=connection, user=user, status="enabled")
    delivery = WebhookDelivery.objects.create(payload_key="k", type="trigger_subscription", event="fired")
    fired = FiredTrigger.objects.create(
        delivery=delivery,
        user_connection=state,
        trigger_id="t.x",
        fired_at=datetime.now(tz=UTC),
        script_state="pending",
    )
    record = fired_trigger_script_run(fired_trigger_id=fired.pk)
    assert record is not None and record.outcome == "memory_exceeded"
    assert fired_trigger_script_run(fired_trigger_id=fired.pk) is None  # already claimed: a no-op
    assert ScriptRun.objects.count() == 1
