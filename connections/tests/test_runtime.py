"""Runtime scripts behave as on IFTTT (Node.js 12, moment.js) and nothing a script does decides what the host does.

IFTTT's documented scripts live in tests/scripts/ and run through `script_test`, as an author runs them.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client import REGISTRY

from connections import sandbox
from connections.models import Connection, FiredTrigger, UserConnection, WebhookDelivery
from connections.runtime.local import Answer, answer_parse, recording_handler
from connections.sandbox import (
    MAX_CALLS,
    MAX_LOG_CHARS,
    MAX_LOG_LINES,
    CallReply,
    SandboxMisbehaved,
    ScriptSetup,
    calls_checked,
    logs_capped,
    script_execute,
)
from connections.services import connect_call_handler, fired_trigger_script_run

SCRIPTS = Path(__file__).resolve().parent / "scripts"
USER = "user-public-id"


def setup(script, *, now=None, zone="America/Los_Angeles"):
    moment = now or datetime.now(tz=UTC)
    return ScriptSetup(
        script=script,
        trigger_id="smarthome.device_switched_on",
        ingredients={"device_name": "Desk lamp", "room": "Office"},
        service_user_id=USER,
        feature_name="yp6zrl2tpd",
        user_feature_id="f98de900-fe18-4fd2-b42b-422761d030a9",
        configuration={"foo": "bar"},
        now_ms=int(moment.timestamp() * 1000),
        zone=zone,
    )


def run(script, handler=None, timeout_s=5.0, **kw):
    return script_execute(setup=setup(script, **kw), handler=handler or recording_handler({}), timeout_s=timeout_s)


def messages(result):
    return [line["message"] for line in result.logs]


def script_test(*args):
    """`manage.py script_test ARGS --json`: its object and its exit status."""
    out = io.StringIO()
    try:
        call_command("script_test", *args, "--json", stdout=out)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    return json.loads(out.getvalue()), status


# --- IFTTT's documented scripts, as `script_test` runs them ---------------------------------------


def test_youtube_to_sms_example_adapted_to_this_catalog():
    rows = [
        {"device_name": "Desk lamp", "room": "Office", "is_on": True},
        {"device_name": "Heater", "room": "Office", "is_on": False},
        {"device_name": "Fan", "room": "Office", "is_on": True},
    ]
    report, status = script_test(
        str(SCRIPTS / "youtube_to_sms.js"),
        "--ingredients",
        json.dumps({"device_name": "Desk lamp", "room": "Office"}),
        "--answer",
        f"smarthome.list_devices=200:{json.dumps({'data': rows})}",
    )
    assert status == 0 and report["outcome"] == "ok" and report["error"] is None
    assert [(c["kind"], c["id"]) for c in report["calls"]] == [("query", "smarthome.list_devices")] + [
        ("action", "sms.send_me_text")
    ] * 3
    assert report["calls"][0]["body"] == {"fields": {"room": "Office"}, "limit": 3}
    assert [c["body"]["fields"]["message"] for c in report["calls"][1:]] == [
        "Desk lamp in Office is on",
        "Heater in Office is off",
        "Fan in Office is on",
    ]


def test_run_an_action_and_a_query_answer_by_default():
    action, _ = script_test(str(SCRIPTS / "run_action.js"))
    assert action["calls"] == [
        {"kind": "action", "id": "sms.send_me_text", "body": {}, "status_code": 200, "response_body": {}}
    ]
    assert action["console"] == [{"level": "log", "message": "action answered 200"}]
    query, _ = script_test(str(SCRIPTS / "run_query.js"))
    assert query["calls"][0]["response_body"] == {"data": []}
    assert query["console"][0]["message"] == "query answered 200 0"


def test_limit_and_override_fields():
    limited, _ = script_test(str(SCRIPTS / "limit_query.js"))
    assert limited["calls"][0]["body"] == {"limit": 3}
    overridden, _ = script_test(str(SCRIPTS / "override_fields.js"))
    assert [c["body"] for c in overridden["calls"]] == [
        {"fields": {"message": "overriden"}},
        {"fields": {"room": "Kitchen"}},
    ]


def test_connection_options_and_feature_context():
    configured, _ = script_test(str(SCRIPTS / "connection_configuration.js"), "--configuration", '{"foo": "bar"}')
    assert configured["console"][0]["message"] == "bar"
    feature, status = script_test(
        str(SCRIPTS / "feature_context.js"), "--feature", "yp6zrl2tpd", "--user-feature-id", "f98de900"
    )
    assert status == 0
    assert feature["console"][0]["message"] == "yp6zrl2tpd"
    assert feature["calls"][0]["body"] == {"user_feature_id": "f98de900"}


def test_every_constant_of_the_api_table():
    report, status = script_test(
        str(SCRIPTS / "constants.js"),
        "--trigger",
        "smarthome.device_switched_on",
        "--ingredients",
        '{"device_name": "Desk lamp"}',
        "--configuration",
        '{"foo": "bar"}',
        "--timezone",
        "Pacific Time (US & Canada)",
        "--now",
        "2024-07-01T03:04:05Z",
        "--feature",
        "yp6zrl2tpd",
        "--user-feature-id",
        "f98de900-fe18-4fd2-b42b-422761d030a9",
        "--service-user-id",
        "UCr9jxQ3llSDks",
    )
    assert status == 0
    assert [line["message"] for line in report["console"]] == [
        "2024-06-30 20:04 -07:00 PDT",
        "smarthome.device_switched_on",
        "Desk lamp",
        "UCr9jxQ3llSDks",
        "yp6zrl2tpd",
        "f98de900-fe18-4fd2-b42b-422761d030a9",
        "bar",
    ]


def test_an_author_can_see_how_the_script_handles_a_422():
    report, status = script_test(str(SCRIPTS / "handles_errors.js"), "--answer", "sms.send_me_text=422")
    assert status == 0
    assert report["calls"][0]["status_code"] == 422
    assert report["calls"][0]["response_body"]["code"] == "invalid_parameters"
    assert report["console"] == [{"level": "warn", "message": "not sent: invalid_parameters"}]
    assert report["calls"][1]["id"] == "email.send_me_email"


def test_repeated_answers_go_to_calls_in_turn():
    handler = recording_handler({"a.b": [Answer(status=500), Answer(status=200, body={"ok": 1})]})
    result = run(
        'runAction("a.b").then(r => { console.log(r.statusCode); return runAction("a.b"); })'
        '.then(r => runAction("a.b").then(s => console.log(r.statusCode, s.statusCode, s.responseBody.ok)));',
        handler,
    )
    assert messages(result) == ["500", "200 200 1"]


# --- the command itself ---------------------------------------------------------------------------


def test_script_test_fails_with_the_authors_line(tmp_path):
    path = tmp_path / "broken.js"
    path.write_text('const a = 1;\nconsole.log("before");\nthrow new Error("boom");\n')
    report, status = script_test(str(path))
    assert status == 1
    assert report["outcome"] == "error"
    assert report["error"]["line"] == 3 and report["error"]["column"] == 7
    assert report["error"]["message"].startswith("Error: boom")
    assert "runtime.js" not in report["error"]["message"]
    assert report["console"] == [{"level": "log", "message": "before"}]


def test_script_test_prints_readably(tmp_path):
    path = tmp_path / "newer.js"
    path.write_text("const device = Trigger.ingredients;\nconst name = device?.device_name;\n")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("script_test", str(path), stdout=out, no_color=True)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "newer.js: error" in text
    assert "newer than Node.js 12" in text
    assert "2 | const name = device?.device_name;" in text
    assert "^" in text


def test_script_test_times_out_with_status_1(tmp_path, settings):
    settings.CONNECTIONS_SCRIPT_TIMEOUT = 1.0
    path = tmp_path / "loop.js"
    path.write_text("while (true) {}")
    report, status = script_test(str(path))
    assert status == 1 and report["outcome"] == "timeout"
    assert "1 s limit" in report["error"]["message"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--answer", "sms.send_me_text"], "ID=STATUS"),
        (["--answer", "../run=200"], "not an action or query id"),
        (["--answer", "sms.send_me_text=abc"], "not an HTTP status"),
        (["--answer", "sms.send_me_text=200:{oops"], "not JSON"),
        (["--ingredients", "[1]"], "must be a JSON object"),
        (["--timezone", "Mars/Olympus"], "not a time zone"),
        (["--now", "yesterday"], "not an ISO-8601"),
        (["--trigger", "no dots"], "not a trigger id"),
    ],
)
def test_script_test_explains_bad_input(args, complaint):
    with pytest.raises(CommandError, match=complaint):
        call_command("script_test", str(SCRIPTS / "run_action.js"), *args, stdout=io.StringIO())


def test_answer_syntax():
    assert answer_parse('q.x=200:{"data": [1]}') == ("q.x", Answer(status=200, body={"data": [1]}))
    assert answer_parse("sms.send_me_text=204") == ("sms.send_me_text", Answer(status=204))


# --- Node.js 12 --------------------------------------------------------------------------------------

NEWER_SYNTAX = {
    "optional chaining": ("const x = Trigger?.id;", 1),
    "nullish coalescing": ("const x = 1;\nconst y = x ?? 2;", 2),
    "logical assignment ??=": ("let x;\nx ??= 1;", 2),
    "logical assignment ||=": ("let x;\n\nx ||= 1;", 3),
    "numeric separators": ("const n = 1_000;", 1),
    "class fields": ("class A {\n  x = 1;\n}", 2),
    "private fields": ("class A {\n  #x = 1;\n}", 2),
    "top-level await": ('await runAction("a.b");', 1),
    "bigint": ("const n = 10n;", 1),
    "regexp indices flag": ("const r = /a/d;", 1),
}


@pytest.mark.parametrize(("source", "line"), NEWER_SYNTAX.values(), ids=NEWER_SYNTAX.keys())
def test_syntax_newer_than_node_12_is_rejected_with_its_place(source, line):
    result = run(source)
    assert result.outcome == "failed"
    assert result.error.startswith("SyntaxError")
    assert result.error_line == line and result.error_column is not None
    assert result.calls == []


def test_top_level_await_says_how_to_write_it():
    result = run('const r = await runAction("a.b");')
    assert "async" in result.error and "Node.js 12" in result.error


def test_node_12_syntax_is_accepted():
    script = """
    const {a, ...rest} = {a: 1, b: 2, c: 3};
    const arr = [[1, 2], [3]].flat();
    try { JSON.parse("{"); } catch { console.log("optional catch binding"); }
    async function f() { for await (const x of [Promise.resolve(1)]) console.log("for await", x); }
    class A { static m() { return "static"; } get g() { return "getter"; } }
    const re = /(?<year>\\d{4})/s;
    console.log(a, JSON.stringify(rest), arr.length, A.m(), new A().g, "2024".match(re).groups.year);
    return f();
    """
    result = run(script)
    assert result.outcome == "succeeded", result.error
    assert messages(result) == ["optional catch binding", '1 {"b":2,"c":3} 3 static getter 2024', "for await 1"]


def test_methods_newer_than_node_12_are_missing_as_there():
    result = run(
        "console.log(typeof [].at, typeof ''.replaceAll, typeof Object.hasOwn, typeof Promise.any, "
        "typeof [].flatMap, typeof Object.fromEntries, typeof Promise.allSettled)"
    )
    assert messages(result) == ["undefined undefined undefined undefined function function function"]


def test_syntax_error_has_its_line_and_column():
    result = run("const a = 1;\nconst b = ;\n")
    assert result.outcome == "failed"
    assert (result.error_line, result.error_column) == (2, 11)
    assert "script.js:2:11" in result.error


def test_runtime_errors_name_the_authors_lines_only():
    result = run(
        'function check(x) {\n  if (!x) throw new TypeError("no device");\n}\ncheck(Trigger.ingredients.none);\n'
    )
    assert result.outcome == "failed"
    assert (result.error_line, result.error_column) == (2, 17)
    assert result.error.splitlines() == [
        "TypeError: no device",
        "    at check (script.js:2:17)",
        "    at script.js:4:1",
    ]
    in_callback = run('runAction("a.b").then(r => {\n  r.nope.x;\n});')
    assert in_callback.error_line == 2
    assert "runtime.js" not in in_callback.error


def test_a_timer_past_the_limit_is_reported_as_it_happened():
    result = run('console.log("set"); setTimeout(() => console.log("never"), 15000);', timeout_s=2.0)
    assert result.outcome == "timed_out"
    assert "waiting for a timer due in 15.00 s, past the 2 s limit" in result.error
    assert result.duration_ms < 2000
    assert messages(result) == ["set"]


def test_intervals_and_immediates():
    result = run(
        "let n = 0;\n"
        "const id = setInterval(() => { n += 1; if (n === 3) { clearInterval(id); console.log('done', n); } }, 5);\n"
        "setImmediate((x) => console.log('immediate', x), 7);"
    )
    assert messages(result) == ["immediate 7", "done 3"]


# --- moment.js ---------------------------------------------------------------------------------------


def test_current_user_time_is_a_real_moment_in_the_users_zone():
    # 2024-07-01 03:04:05 UTC is Sunday 30 June, 20:04 in Los Angeles (PDT).
    now = datetime(2024, 7, 1, 3, 4, 5, tzinfo=UTC)
    script = """
    const t = Meta.currentUserTime;
    console.log(t.clone().add(1, 'hours').format('HH:mm'), t.format('HH:mm'));
    console.log(t.clone().subtract(1, 'days').format('YYYY-MM-DD'), t.clone().startOf('day').format());
    console.log(t.clone().endOf('month').format('D'), t.diff(t.clone().startOf('day'), 'minutes'));
    console.log(t.isSame(t.clone(), 'day'), t.isBefore('2999-01-01'), t.isAfter('2000-01-01'));
    console.log(t.clone().utc().format(), t.clone().hour(22).format('HH:mm'), typeof t.clone().hour(22));
    console.log(t.tz(), t.clone().tz('Europe/Paris').format('HH:mm z'), t.day(), t.format('dddd'));
    const later = t.clone().add(1, 'hour');
    console.log(t.isBetween(t.clone().subtract(1, 'hour'), later), later.fromNow === undefined);
    """
    result = run(script, now=now)
    assert result.outcome == "succeeded", result.error
    assert messages(result) == [
        "21:04 20:04",
        "2024-06-29 2024-06-30T00:00:00-07:00",
        "30 1204",
        "true true true",
        "2024-07-01T03:04:05Z 22:04 object",
        "America/Los_Angeles 05:04 CEST 0 Sunday",
        "true false",
    ]


def test_zone_aliases_and_rails_names_resolve():
    now = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    kyiv = run("console.log(Meta.currentUserTime.format('HH:mm Z'))", now=now, zone="Europe/Kiev")
    assert messages(kyiv) == ["14:00 +02:00"]
    utc = run("console.log(Meta.currentUserTime.format('HH:mm Z'))", now=now, zone="Etc/UTC")
    assert messages(utc) == ["12:00 +00:00"]


# --- nothing the script reaches decides what the host does -------------------------------------------

TAMPER = r"""
const fake = [...Array(3000)].map((_, i) => ({seq: 1e6 + i, kind: 'action', id: 'x', body: {}}));
JSON.stringify = (o => function (v) {
  if (v && v.calls) v.calls = fake;
  return o.apply(this, arguments);
})(JSON.stringify);
JSON.parse = () => [{seq: 1, statusCode: 200, responseBody: {}}];
Array.prototype.splice = function () { return fake; };
Array.prototype.push = function () { return 0; };
Array.prototype.map = function () { return fake; };
Array.prototype.join = function () { return "x".repeat(1e6); };
Array.prototype.forEach = function () {};
Array.prototype[Symbol.iterator] = function* () { yield* fake; };
Object.defineProperty(Array.prototype, "0", { set() {}, get() { return fake[0]; }, configurable: true });
Object.prototype.toJSON = function () { return fake; };
Object.defineProperty(Object.prototype, "then", { get() { return undefined; }, configurable: true });
Object.defineProperty(Object.prototype, "error", { get() { return "forged"; }, configurable: true });
Object.keys = () => fake;
Object.freeze = (x) => x;
Object.defineProperty = () => {};
String.prototype.replace = function () { return "forged"; };
String.prototype.slice = function () { return "forged"; };
String.prototype.toString = function () { return "forged"; };
Function.prototype.call = function () { return fake; };
Function.prototype.apply = function () { return fake; };
Function.prototype.bind = function () { return () => fake; };
Object.prototype[Symbol.toPrimitive] = () => "forged";
String.prototype[Symbol.iterator] = function* () { yield "forged"; };
Symbol.prototype.toString = () => "forged";
Error.prepareStackTrace = () => "forged";
Reflect.apply = () => fake;
Reflect.ownKeys = () => fake;
Map.prototype.get = () => undefined;
Map.prototype.set = () => {};
Map.prototype.values = function* () { yield* fake; };
WeakSet.prototype.has = () => true;
RegExp.prototype.exec = () => ["x"];
RegExp.prototype.test = () => true;
Date.now = () => 0;
Math.max = () => 0;
Promise.prototype.then = function (f) { return this; };
Promise.reject = () => fake;
globalThis.Proxy = function () { return fake; };
globalThis.Promise = function () { return fake; };
globalThis.JSON = { stringify: () => "{}", parse: () => fake };
for (let i = 0; i < 60; i++) runAction("a.b", { fields: { n: i } });
runAction("x");
runAction("..");
for (let i = 0; i < 2000; i++) console.log("line", i);
setTimeout(() => {
  for (let i = 0; i < 60; i++) runAction("a.b");
  for (let i = 0; i < 2000; i++) console.log("late", i);
}, 1);
"""


def test_a_script_that_replaces_every_built_in_it_reaches_stays_within_the_limits(connect_api):
    connect_api.enabled_users.add(USER)
    handler = connect_call_handler(connection_id="conn-1", user_id=USER, deadline=time.monotonic() + 10)
    result = run(TAMPER, handler, timeout_s=5.0)
    assert len(result.calls) == MAX_CALLS
    assert {c.id for c in result.calls} == {"a.b"}
    assert len(connect_api.requests) == MAX_CALLS
    assert all(r.path.endswith("/actions/a.b/run") for r in connect_api.requests)
    assert len(result.logs) <= 500
    assert result.logs_dropped >= 2000
    # And the next run, in a fresh context, has its built-ins back.
    assert messages(run("console.log(JSON.stringify({a: [1].map(x => x + 1)}))")) == ['{"a":[2]}']


def call(seq, call_id="a.b", kind="action", body=None):
    return {"seq": seq, "kind": kind, "id": call_id, "body": body if body is not None else {}}


@pytest.mark.parametrize(
    ("calls", "why"),
    [
        ([call(i) for i in range(1, MAX_CALLS + 2)], "more than 50"),
        ([call(1_000_000)], "out of sequence"),
        ([call(1), call(1)], "out of sequence"),
        ([call(True)], "out of sequence"),
        ([call(1, kind="trigger")], "neither an action nor a query"),
        ([call(1, call_id="..")], "not an IFTTT id"),
        ([call(1, call_id="a.b/../../run")], "not an IFTTT id"),
        ([call(1, body=[1])], "not an object"),
        ([call(1, body={"x": "y" * 70_000})], "allowed size"),
        ("calls", "malformed"),
    ],
)
def test_the_host_checks_every_call_the_sandbox_reports(calls, why):
    with pytest.raises(SandboxMisbehaved, match=why):
        calls_checked(calls, set())


def test_the_host_caps_console_output_whatever_the_sandbox_sends():
    flood = [{"level": "log", "message": f"line {i}"} for i in range(MAX_LOG_LINES + 100)]
    logs, dropped = logs_capped(flood, 7)
    assert len(logs) == MAX_LOG_LINES and dropped == 107
    big = [{"level": "evil", "message": "x" * (MAX_LOG_CHARS - 10)}, {"level": "log", "message": "y" * 20}, "junk"]
    logs, dropped = logs_capped(big, -5)
    assert logs == [{"level": "log", "message": "x" * (MAX_LOG_CHARS - 10)}] and dropped == 2


def test_a_sandbox_killed_mid_run_is_reported_with_how():
    def kill(kind, call_id, body):
        sandbox._local.sandbox.process.kill()
        sandbox._local.sandbox.process.wait()
        return CallReply(status_code=200, body={})

    result = run('console.log("before"); runAction("a.b").then(() => console.log("after"));', kill)
    assert result.outcome == "crashed"
    assert "killed by SIGKILL" in result.error
    assert [c.id for c in result.calls] == ["a.b"]
    assert messages(run('console.log("next")')) == ["next"]


def test_the_reported_reproduction_makes_at_most_the_capped_calls():
    script = (
        "JSON.stringify=(o=>function(v){if(v&&v.calls)v.calls=[...Array(3000)].map((_,i)=>"
        "({seq:1e6+i,kind:'action',id:'x',body:{}}));return o.apply(this,arguments)})(JSON.stringify);\n"
        'runAction("a.b"); console.log(JSON.stringify({calls: 1}).length > 1000);'
    )
    result = run(script)
    assert [c.id for c in result.calls] == ["a.b"]
    assert messages(result) == ["true"]


BAD_IDS = ["..", "../../run", "a/b", "sms.send me", "SMS.Text", "sms", "sms..x", "a.b/c", "a.b?x=1", "", "a.b\n"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_are_not_ifttt_ids_never_reach_the_connect_api(bad, connect_api):
    handler = connect_call_handler(connection_id="conn-1", user_id=USER, deadline=time.monotonic() + 10)
    result = run(
        f"runAction({json.dumps(bad)}).catch(e => console.log(e.name));"
        f"performQuery({json.dumps(bad)}).catch(e => console.log(e.name));",
        handler,
    )
    assert messages(result) == ["TypeError", "TypeError"]
    assert result.calls == [] and connect_api.requests == []


def test_a_worker_time_limit_is_not_caught_by_the_run():
    def slow(kind, call_id, body):
        raise SoftTimeLimitExceeded()

    with pytest.raises(SoftTimeLimitExceeded):
        run('runAction("a.b").then(() => console.log("went on"));', slow)
    assert messages(run('console.log("next")')) == ["next"]


def test_a_handler_reply_is_what_the_promise_gets():
    def answer(kind, call_id, body):
        return CallReply(error="IFTTT's Connect API did not answer")

    result = run('runAction("a.b").catch(e => console.log("rejected:", e.message));', answer)
    assert messages(result) == ["rejected: IFTTT's Connect API did not answer"]


# --- metrics -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runs_are_counted_by_outcome(make_user):
    def counted(outcome):
        return REGISTRY.get_sample_value("script_runs_total", {"outcome": outcome}) or 0.0

    def observed():
        return REGISTRY.get_sample_value("script_run_duration_seconds_count") or 0.0

    user = make_user("dora")
    connection = Connection.objects.create(connection_id="conn-1", script="throw new Error('x')")
    state = UserConnection.objects.create(connection=connection, user=user, status="enabled")
    delivery = WebhookDelivery.objects.create(payload_key="k", type="trigger_subscription", event="fired")
    fired = FiredTrigger.objects.create(
        delivery=delivery,
        user_connection=state,
        trigger_id="t.x",
        fired_at=datetime.now(tz=UTC),
        script_state="pending",
    )
    before, seen = counted("failed"), observed()
    record = fired_trigger_script_run(fired_trigger_id=fired.pk)
    assert record is not None and record.outcome == "failed"
    assert counted("failed") == before + 1
    assert observed() == seen + 1
