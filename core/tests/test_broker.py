"""The embedded broker (core/broker.py): nothing lost, nothing delivered twice, a dead consumer's work
goes back to the queue. Real processes share one SQLite file, as gunicorn and the worker do."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from queue import Empty
from typing import Any

from kombu import Connection

from core.broker import broker_url, register

register()

ROOT = Path(__file__).resolve().parents[2]


def connect(path: Path, **options: Any) -> Any:  # the stubs lack SimpleQueue
    return Connection(broker_url(path), transport_options={"polling_interval": 0.02, **options})


def drain(conn: Any, queue: str, seconds: float = 3.0) -> list[Any]:
    simple = conn.SimpleQueue(queue)
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            message = simple.get(timeout=0.2)
        except Empty:
            continue
        got.append(message.payload)
        message.ack()
    return got


PRODUCER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from kombu import Connection
    from core.broker import broker_url, register
    from pathlib import Path
    register()
    with Connection(broker_url(Path({path!r}))) as conn:
        queue = conn.SimpleQueue("work")
        for n in range({start}, {start} + {count}):
            queue.put({{"n": n}})
    """
)


def test_messages_from_several_processes_reach_two_consumers_each_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER.format(root=str(ROOT), path=str(path), start=p * 200, count=200)]
        )
        for p in range(3)
    ]
    seen: Counter[int] = Counter()
    with connect(path) as one, connect(path) as two:
        a, b = one.SimpleQueue("work"), two.SimpleQueue("work")
        deadline = time.monotonic() + 60
        while sum(seen.values()) < 600 and time.monotonic() < deadline:
            for simple in (a, b):
                try:
                    message = simple.get(timeout=0.05)
                except Empty:
                    continue
                seen[message.payload["n"]] += 1
                message.ack()
    for producer in producers:
        assert producer.wait(timeout=60) == 0
    assert sorted(seen) == list(range(600))
    assert set(seen.values()) == {1}
    with connect(path) as conn:
        assert conn.SimpleQueue("work").qsize() == 0


CLAIMER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from kombu import Connection
    from core.broker import broker_url, register
    from pathlib import Path
    register()
    with Connection(broker_url(Path({path!r})), transport_options={{"lease_seconds": 1.0}}) as conn:
        message = conn.SimpleQueue("work").get(timeout=10)
        print(message.payload["n"], flush=True)
        time.sleep(600)
    """
)


def test_a_message_held_by_a_killed_consumer_is_delivered_again_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    with connect(path) as conn:
        conn.SimpleQueue("work").put({"n": 1})
    claimer = subprocess.Popen(
        [sys.executable, "-c", CLAIMER.format(root=str(ROOT), path=str(path))], stdout=subprocess.PIPE, text=True
    )
    assert claimer.stdout is not None
    assert claimer.stdout.readline().strip() == "1"
    with connect(path, lease_seconds=1.0) as conn:
        # While the claimer lives, the message is its own (no one else gets it).
        assert drain(conn, "work", seconds=0.5) == []
        os.kill(claimer.pid, signal.SIGKILL)
        claimer.wait()
        assert drain(conn, "work", seconds=5.0) == [{"n": 1}]
        assert drain(conn, "work", seconds=2.0) == []


def test_a_live_consumer_keeps_what_it_holds_past_the_lease(tmp_path: Path) -> None:
    """A worker holding a countdown task for later must not lose it to another worker."""
    path = tmp_path / "broker.sqlite3"
    with connect(path, lease_seconds=0.6) as holder, connect(path, lease_seconds=0.6) as other:
        holder.SimpleQueue("work").put({"n": 7})
        held = holder.SimpleQueue("work").get(timeout=5)
        # The holder keeps polling (as a worker's loop does) while the other looks for work.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with contextlib.suppress(Empty):
                holder.SimpleQueue("idle").get(timeout=0.1)
            assert drain(other, "work", seconds=0.1) == []
        held.ack()
    with connect(path) as conn:
        assert conn.SimpleQueue("work").qsize() == 0


def test_a_requeued_message_is_given_back_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    with connect(path) as conn:
        simple = conn.SimpleQueue("work")
        simple.put({"n": 1})
        simple.get(timeout=5).requeue()
        assert simple.qsize() == 1
        assert drain(conn, "work", seconds=1.0) == [{"n": 1}]
        assert simple.qsize() == 0


def test_an_orderly_shutdown_gives_unacked_messages_back(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    with connect(path) as conn:
        simple = conn.SimpleQueue("work")
        simple.put({"n": 1})
        simple.get(timeout=5)  # never acked
    with connect(path) as conn:
        assert drain(conn, "work", seconds=1.0) == [{"n": 1}]


def test_the_broker_writes_only_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "broker.sqlite3"
    with connect(path) as conn:
        conn.SimpleQueue("work").put({"n": 1})
        assert drain(conn, "work", seconds=0.5) == [{"n": 1}]
    assert {p.name for p in path.parent.iterdir()} <= {"broker.sqlite3", "broker.sqlite3-wal", "broker.sqlite3-shm"}
    assert not (Path.cwd() / "control").exists()
