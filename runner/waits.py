"""Waiting on a condition: one helper instead of hand-written deadline-and-sleep loops.

Every wait has a bound (a deadline) and says on timeout what it waited for, so a stuck broker or
query ends as a clear error instead of a hang. The condition may raise to stop the wait early
(e.g. the process it waits on has exited).
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from runner.errors import RunnerError

T = TypeVar("T")


class WaitTimeout(RunnerError):
    """The condition did not hold before the deadline."""


def wait_until(condition: Callable[[], T], *, timeout_s: float, interval_s: float = 0.2,
               message: str | Callable[[], str] = "the condition", hint: str | None = None) -> T:
    """Call `condition` every `interval_s` seconds until it returns a true value, and return that
    value; after `timeout_s` seconds raise WaitTimeout("timed out after Ns waiting for <message>").
    `message` may be a callable, evaluated only on timeout (to show the last state seen).
    The condition is always tried at least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            what = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout_s:g}s waiting for {what}", hint=hint)
        time.sleep(min(interval_s, left))
