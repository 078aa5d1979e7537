"""What checking a body costs: the JSON parser's checks (size, depth, numbers, storable text) and the
device API's serializers, beside json.loads of the same bytes (the floor: reading the body at all).

In process, no server or database: each body is parsed or validated `--repeat` times per round, the
variants interleaved round by round; the table gives the median (min–max) microseconds per body.

    .venv/bin/python bench/input_checks.py            # about 20 seconds
    .venv/bin/python bench/input_checks.py --rounds 3 --repeat 50
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")

import django

django.setup()

from core.http import JSONParser  # noqa: E402
from devices.apis import events_parse  # noqa: E402
from devices.models import Device, DeviceKind  # noqa: E402

EVENT = {"type": "temperature", "value": 21.5, "occurred_at": "2026-11-04T09:23:00Z", "event_id": "r-1042"}
BODIES = {
    "trigger poll": {
        "trigger_identity": "92429d82a41e930486c6de5ebda9602d55c39986",
        "triggerFields": {"device": "58363578051ea3ef"},
        "limit": 50,
        "user": {"timezone": "America/Los_Angeles"},
        "ifttt_source": {"id": "2", "url": "https://ifttt.com/myrecipes/personal/2"},
    },
    "1 device event": EVENT,
    "500 device events": {"events": [{**EVENT, "event_id": f"r-{i}"} for i in range(500)]},
}


def _loads(raw: bytes) -> object:
    return json.loads(raw.decode())


def _parse(parser: JSONParser, raw: bytes) -> object:
    return parser.parse(io.BytesIO(raw))


def _events(parser: JSONParser, raw: bytes, device: Device) -> object:
    return events_parse(parser.parse(io.BytesIO(raw)), device)


def _time(work: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - started) / repeat * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    thermostat = Device(name="Hall", kind=DeviceKind.THERMOSTAT, room="Hall")
    json_parser = JSONParser()
    variants: dict[str, Callable[[], object]] = {}
    for name, body in BODIES.items():
        raw = json.dumps(body).encode()
        variants[f"{name}: json.loads (floor)"] = partial(_loads, raw)
        variants[f"{name}: JSONParser with checks"] = partial(_parse, json_parser, raw)
        if name != "trigger poll":
            variants[f"{name}: JSONParser + serializers"] = partial(_events, json_parser, raw, thermostat)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(args.rounds):
        for name, work in variants.items():
            repeat = max(1, args.repeat // 50) if "500" in name else args.repeat
            samples[name].append(_time(work, repeat))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    print(f"\n{'body: variant':55} {'µs per body, median (min–max)':>34}")
    for name, values in samples.items():
        print(f"{name:55} {statistics.median(values):>14,.1f} ({min(values):,.1f}–{max(values):,.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
