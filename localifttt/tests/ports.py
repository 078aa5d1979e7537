"""Servers the tests start listen on the project's test ports (8450-8499), never on a random one."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from typing import TypeVar

PORTS = range(8450, 8500)
T = TypeVar("T")


def bind_in_range(make: Callable[[int], T]) -> T:
    """`make(port)` for the first free port of the range, tried in random order (parallel test runs)."""
    ports = list(PORTS)
    random.shuffle(ports)
    for port in ports:
        try:
            return make(port)
        except OSError:
            continue
    raise RuntimeError(f"every port from {PORTS.start} to {PORTS.stop - 1} is taken")


def free_port() -> int:
    """A port of the range that is free right now (for a server another piece of code will start)."""

    def probe(port: int) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
        return port

    return bind_in_range(probe)
