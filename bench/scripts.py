"""Connection runtime scripts: run overhead (script start to finish, excluding Connect API time).

    .venv/bin/python bench/scripts.py [--runs 300]

Baseline, measured in the same run: the same script evaluated in one long-lived, in-process V8
context (no sandbox process, no fresh context, no Promise pumping): the engine's floor.
Measured: `script_execute` as the worker calls it, answered by the dry-run handler so no network
time is involved (and the handler's time is excluded anyway). "back-to-back" starts each run the
moment the previous one ends; "paced" leaves 20 ms between runs, as a worker has between events,
so the sandbox's next context is ready before the run starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")

import django

django.setup()

from connections.sandbox import ScriptSetup, sandbox_shutdown, script_execute  # noqa: E402
from connections.services import dry_run_handler  # noqa: E402

SCRIPTS = {
    "one action": 'runAction("sms.send_me_text", {fields: {message: Trigger.ingredients.title}});',
    "YouTube → SMS (1 query, 3 actions)": """
const likedVidTitle = Trigger.ingredients.title;
const promise = performQuery("youtube.get_videos_from_search", { fields: {search_query: likedVidTitle}, limit: 3});
promise.then((response) => {
  response.responseBody.data.forEach(video => {
    runAction("sms.send_me_text", { fields: { message: `${video.title} ${video.url}` }});
  });
});
if (Meta.currentUserTime.hour() > 22) console.log("late");
""",
}

SAMPLES = {"youtube.get_videos_from_search": [{"title": f"Video {i}", "url": f"https://v/{i}"} for i in range(5)]}

# The baseline's stand-ins for the globals, so the same source runs in a bare context.
BASELINE_PRELUDE = """
var Trigger = {id: "youtube.new_liked_video", ingredients: {title: "Cats"}};
var Meta = {currentUserTime: {hour: () => 12}};
var runAction = () => Promise.resolve({statusCode: 204, responseBody: {}});
var performQuery = () => Promise.resolve({statusCode: 200, responseBody: {type: "list", data: [
  {title: "a", url: "u"}, {title: "b", url: "u"}, {title: "c", url: "u"}]}});
"""


def setup(script: str) -> ScriptSetup:
    return ScriptSetup(
        script=script,
        trigger_id="youtube.new_liked_video",
        ingredients={"title": "Cats"},
        service_user_id="user-1",
        feature_name="feature",
        user_feature_id="4da42aa6-3858-4722-9ded-6a7ecdefd91f",
        configuration={},
        now_ms=int(time.time() * 1000),
        offset_minutes=-480,
        zone="America/Los_Angeles",
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def baseline(script: str, runs: int) -> list[float]:
    from py_mini_racer import MiniRacer

    ctx = MiniRacer()
    ctx.eval(BASELINE_PRELUDE)
    source = f"(async function() {{ {script} }})(); 0"
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        ctx.eval(source)
        timings.append((time.perf_counter() - started) * 1000)
    ctx.close()
    return timings


def measured(script: str, runs: int, pause_s: float, label: str) -> list[float]:
    handler = dry_run_handler(query_samples=SAMPLES)
    script_execute(setup=setup(script), handler=handler)  # starts the sandbox process
    timings = []
    for index in range(runs):
        if pause_s:
            time.sleep(pause_s)
        result = script_execute(setup=setup(script), handler=handler)
        if result.outcome != "succeeded":
            raise SystemExit(f"The benchmark script failed: {result.error}")
        timings.append(result.overhead_ms)
        if (index + 1) % 100 == 0:
            print(f"  {label}: {index + 1}/{runs} runs", file=sys.stderr, flush=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="runs per measurement (default 300)")
    args = parser.parse_args()

    print(f"Connection script run overhead, {args.runs} runs each (ms; lower is better)\n")
    print("| script | mode | p50 | p95 | p50 ÷ baseline p50 |")
    print("|---|---|---:|---:|---:|")
    try:
        for name, script in SCRIPTS.items():
            base = baseline(script, args.runs)
            base_p50 = statistics.median(base)
            rows = [("baseline: bare in-process V8 eval", base)]
            rows.append(("sandboxed, back-to-back", measured(script, args.runs, 0.0, f"{name}, back-to-back")))
            rows.append(("sandboxed, paced 20 ms", measured(script, args.runs, 0.02, f"{name}, paced")))
            for mode, timings in rows:
                p50 = statistics.median(timings)
                print(
                    f"| {name} | {mode} | {p50:.2f} | {percentile(timings, 0.95):.2f} | {p50 / base_p50:.1f}× |",
                    flush=True,
                )
    finally:
        sandbox_shutdown()
    print("\nTarget: sandboxed p50 ≤ 5 ms. Re-run after changing connections/runtime/ or connections/sandbox.py.")


if __name__ == "__main__":
    main()
