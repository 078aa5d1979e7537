#!/usr/bin/env python
"""What the API log costs a trigger poll, measured A/B in one run.

Builds a small PostgreSQL database (the endpoint-test account, whose feeds hold a few events each),
then polls `device_switched_on` through the whole Django stack (middleware, authentication, the
view, the log) with the log on and off, alternating in blocks so both see the same machine load.
Reports the median poll time of each, and their ratio (the budget is 1.10).

    .venv/bin/python bench/api_log.py                 # about a minute
    .venv/bin/python bench/api_log.py --blocks 4 --polls 100

For throughput under concurrency, run bench/poll.py with IFTTT_API_LOG_ENABLED=0 and =1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_api_log"
BUDGET = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--blocks", type=int, default=10, help="blocks per setting, alternating (default: %(default)s)")
    parser.add_argument("--polls", type=int, default=200, help="polls per block (default: %(default)s)")
    args = parser.parse_args()

    django_start(args.database_url, IFTTT_REALTIME_URL="")
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    from protocol.middleware import api_log_flush
    from protocol.models import ApiCall
    from protocol.services import endpoint_tests_prepare

    setup = endpoint_tests_prepare()
    fields = setup["samples"]["triggers"]["device_switched_on"]
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {setup['accessToken']}",
        "HTTP_X_REQUEST_ID": "0123456789abcdef0123456789abcdef",
        "HTTP_ACCEPT": "application/json",
    }
    body = json.dumps({"trigger_identity": "bench-identity", "triggerFields": fields, "limit": 50})
    handler = WSGIHandler()
    factory = RequestFactory()
    worker: dict[bool, list[float]] = {True: [], False: []}

    def block(enabled: bool) -> list[float]:
        """Time to the answer (what IFTTT waits for), and to the closed response (the worker's time)."""
        settings.IFTTT_API_LOG_ENABLED = enabled
        times = []
        for _ in range(args.polls):
            environ = factory.post(
                "/ifttt/v1/triggers/device_switched_on", body, content_type="application/json", **headers
            ).environ
            started = time.perf_counter()
            response = handler(environ, lambda status, headers, exc_info=None: None)
            answered = time.perf_counter()
            content = b"".join(response)
            response.close()
            done = time.perf_counter()
            times.append((answered - started) * 1000)
            worker[enabled].append((done - started) * 1000)
            assert response.status_code == 200, content
        return times

    say("Warming up…")
    block(True)
    block(False)
    results: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.blocks):
        for enabled in (False, True) if i % 2 == 0 else (True, False):
            results[enabled].extend(block(enabled))
        say(
            f"  block {i + 1}/{args.blocks}: off {statistics.median(results[False]):.2f} ms, "
            f"on {statistics.median(results[True]):.2f} ms (medians so far)"
        )
    off, on = statistics.median(results[False]), statistics.median(results[True])
    ratio = on / off
    worker_ratio = statistics.median(worker[True]) / statistics.median(worker[False])
    say("")
    say("| log | polls | answer median ms | answer p90 ms | worker median ms |\n|---|---:|---:|---:|---:|")
    for enabled, label in ((False, "off (baseline)"), (True, "on")):
        times = sorted(results[enabled])
        say(
            f"| {label} | {len(times)} | {statistics.median(times):.2f} | {times[int(len(times) * 0.9)]:.2f} "
            f"| {statistics.median(worker[enabled]):.2f} |"
        )
    say("")
    say(f"answer time, on ÷ off: {ratio:.3f} (budget ≤ {BUDGET:.2f}) — {'met' if ratio <= BUDGET else 'MISSED'}")
    say(f"worker time (incl. the log write after the answer), on ÷ off: {worker_ratio:.3f}")
    name = urlsplit(args.database_url).path[1:]
    api_log_flush()  # rows still in this process's buffer
    say(f"{ApiCall.objects.count():,} rows logged. The database {name} is left in place.")


if __name__ == "__main__":
    main()
