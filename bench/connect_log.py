#!/usr/bin/env python
"""What the Connect API log costs an outgoing Connect call, measured A/B in one run.

A local HTTP server answers action runs with 204 at once (so the network is loopback and IFTTT's own
time is nil: the worst case for the log's share). Each call is `ConnectClient.action_run` as a script's
`runAction` makes it; with the log, each attempt also writes its `ConnectApiCall` row and counts
`connect_calls_total`. The floor, measured in the same run, is the same client with the log switched
off. Blocks alternate so both see the same machine load. Reports the median per-call time of each
block, median (min–max) over the blocks, and the ratio.

    .venv/bin/python bench/connect_log.py               # PostgreSQL (bench_connect_log), under a minute
    .venv/bin/python bench/connect_log.py --blocks 6 --calls 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_connect_log"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's session uses it

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--blocks", type=int, default=8, help="blocks per setting, alternating (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=200, help="calls per block (default: %(default)s)")
    args = parser.parse_args()

    django_start(args.database_url, IFTTT_REALTIME_URL="")
    from connections.client import ConnectClient
    from connections.models import ConnectApiCall

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    class Unlogged(ConnectClient):
        def _log(self, *args: Any, **kwargs: Any) -> None:
            pass

    clients = {
        "floor (no log)": Unlogged(base_url=url, service_key="k"),
        "with API log": ConnectClient(base_url=url, service_key="k"),
    }

    def block(client: ConnectClient) -> float:
        times = []
        for _ in range(args.calls):
            started = time.perf_counter()
            client.action_run(connection_id="conn-1", action_id="sms.send_me_text", user_id="u1", user_feature_id="uf")
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    for client in clients.values():  # warm the connections and the database
        block(client)
    results: dict[str, list[float]] = {name: [] for name in clients}
    for index in range(args.blocks):
        order = list(clients.items()) if index % 2 == 0 else list(reversed(clients.items()))
        for name, client in order:
            results[name].append(block(client))
    server.shutdown()
    say(f"{args.blocks} blocks × {args.calls} action runs each, per-call median of each block (ms):")
    for name, values in results.items():
        say(f"  {name:<16} {statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})")
    floor = statistics.median(results["floor (no log)"])
    logged = statistics.median(results["with API log"])
    say(
        f"  ratio {logged / floor:.2f}× (+{logged - floor:.3f} ms per call); "
        f"rows written: {ConnectApiCall.objects.count()}"
    )


if __name__ == "__main__":
    main()
