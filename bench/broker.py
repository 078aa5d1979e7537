#!/usr/bin/env python
"""Embedded broker candidates under concurrent use: throughput, and whether any message is lost,
delivered twice or breaks a consumer.

Each round, for each transport in turn (interleaved, so all see the same machine): several producer
processes publish numbered messages while several consumer processes take, and ack, them. A consumer
that hits an error while taking a message counts it and carries on (a Celery worker stops on it: the
`JSONDecodeError` of kombu issue #1551 is one). The round ends when every message has arrived or
nothing has arrived for `--stall` seconds.

- `sqlite`: core/broker.py, the embedded default (one SQLite file, claimed and acked rows, WAL);
- `filesystem`: kombu's filesystem transport, the embedded default before it;
- `sqlalchemy`: kombu's SQLAlchemy transport on a SQLite file;
- `redis`: the production broker (a Redis server at --redis), the floor to compare with; skipped
  when no server answers.

    .venv/bin/python bench/broker.py                         # 5 rounds of 4 x 500 messages
    .venv/bin/python bench/broker.py --rounds 2 --messages 200

Prints a Markdown table: messages/s median (min–max) and totals of lost, duplicated and errors, then
the commonest errors of each transport. "Lost" counts messages that never arrived, whether or not an
error said so (kombu's SQLAlchemy transport drops a message it could not write without raising).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from queue import Empty
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import say  # noqa: E402


def broker_url(transport: str, folder: Path, redis_url: str) -> tuple[str, dict[str, Any]]:
    if transport == "sqlite":
        from core.broker import broker_url as sqlite_url

        return sqlite_url(folder / "broker.sqlite3"), {"polling_interval": 0.05}
    if transport == "filesystem":
        queue = folder / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        (folder / "processed").mkdir(exist_ok=True)
        options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        return "filesystem://", options
    if transport == "sqlalchemy":
        # Its transport options go to create_engine(), so its polling interval stays the default.
        return f"sqla+sqlite:///{folder / 'broker-sqla.sqlite3'}", {}
    return redis_url, {}


def _connection(url: str, options: dict[str, Any]) -> Any:
    from kombu import Connection

    from core.broker import register

    register()
    return Connection(url, transport_options=options)


def producer(url: str, options: dict[str, Any], queue: str, ids: list[int], errors: Any) -> None:
    with _connection(url, options) as conn:
        simple = conn.SimpleQueue(queue)
        for n in ids:
            try:
                simple.put({"n": n})
            except Exception as exc:
                errors.put(f"publish: {type(exc).__name__}: {exc}".splitlines()[0][:100])


def consumer(url: str, options: dict[str, Any], queue: str, received: Any, errors: Any, stop: Any) -> None:
    with _connection(url, options) as conn:
        simple = conn.SimpleQueue(queue)
        while not stop.is_set():
            try:
                message = simple.get(timeout=0.5)
            except Empty:
                continue
            except Exception as exc:
                errors.put(f"take: {type(exc).__name__}: {exc}".splitlines()[0][:100])
                continue
            received.put(message.payload["n"])
            message.ack()


def round_run(transport: str, args: argparse.Namespace) -> dict[str, Any] | None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-broker-{transport}-"))
    try:
        url, options = broker_url(transport, folder, args.redis)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        # Schema and queue in place before the processes start (several creating them at once is a
        # start-up race of its own, not what this measures); no Redis server: skipped.
        try:
            with _connection(url, options) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                conn.SimpleQueue(queue).close()  # declares it
        except Exception:
            if transport == "redis":
                return None
            raise
        received: Any = mp.Queue()
        errors: Any = mp.Queue()
        stop = mp.Event()
        total = args.producers * args.messages
        consumers = [
            mp.Process(target=consumer, args=(url, options, queue, received, errors, stop))
            for _ in range(args.consumers)
        ]
        for process in consumers:
            process.start()
        time.sleep(1.0)  # consumers connected and polling
        started = time.perf_counter()
        producers = [
            mp.Process(
                target=producer,
                args=(url, options, queue, list(range(p * args.messages, (p + 1) * args.messages)), errors),
            )
            for p in range(args.producers)
        ]
        for process in producers:
            process.start()
        seen: Counter[int] = Counter()
        last = time.perf_counter()
        finished = started
        while sum(seen.values()) < total and time.perf_counter() - last < args.stall:
            try:
                seen[received.get(timeout=0.2)] += 1
            except Empty:
                continue
            last = finished = time.perf_counter()
        time.sleep(0.5)  # duplicates that arrive just after the last message
        while not received.empty():
            seen[received.get()] += 1
        stop.set()
        for process in producers + consumers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        kinds: Counter[str] = Counter()
        while not errors.empty():
            kinds[errors.get()] += 1
        delivered = len(seen)
        return {
            "per_s": delivered / max(finished - started, 1e-9),
            "lost": total - delivered,
            "duplicated": sum(c - 1 for c in seen.values() if c > 1),
            "errors": sum(kinds.values()),
            "kinds": kinds,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=500, help="per producer")
    parser.add_argument("--stall", type=float, default=10.0, help="seconds without a message that end a round")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--transports", default="sqlite,filesystem,sqlalchemy,redis")
    args = parser.parse_args()
    transports = args.transports.split(",")
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in transports}
    say(
        f"{args.rounds} rounds: {args.producers} producers x {args.messages} messages, {args.consumers} consumers, "
        f"transports in turn: {', '.join(transports)}"
    )
    for n in range(args.rounds):
        for transport in transports:
            result = round_run(transport, args)
            if result is None:
                say(f"  round {n + 1} {transport}: skipped (no server at {args.redis})")
                continue
            results[transport].append(result)
            say(
                f"  round {n + 1} {transport}: {result['per_s']:,.0f} messages/s, lost {result['lost']}, "
                f"duplicated {result['duplicated']}, errors {result['errors']}"
            )
    say("")
    say("| transport | messages/s, median (min–max) | lost | duplicated | consumer errors |")
    say("|---|---|---|---|---|")
    for transport, rounds in results.items():
        if not rounds:
            continue
        rates = [r["per_s"] for r in rounds]
        say(
            f"| {transport} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
            f"{sum(r['lost'] for r in rounds)} | {sum(r['duplicated'] for r in rounds)} | "
            f"{sum(r['errors'] for r in rounds)} |"
        )
    say("")
    for transport, rounds in results.items():
        kinds = sum((r["kinds"] for r in rounds), Counter())
        for kind, count in kinds.most_common(3):
            say(f"- {transport}: {count} x {kind}")


if __name__ == "__main__":
    main()
