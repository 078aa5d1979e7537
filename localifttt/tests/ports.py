"""Ports for the servers the tests start: chosen free by the operating system at run time, so several
checkouts (or parallel runs) can test on one machine at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from conftest import free_port

T = TypeVar("T")

__all__ = ["bind_in_range", "free_port"]


def bind_in_range(make: Callable[[int], T]) -> T:
    """`make(0)`: a server bound to a port the operating system picks (read it from the server)."""
    return make(0)
