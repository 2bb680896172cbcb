"""runner/waits.py: the one wait-until helper (bounded deadline, poll interval, message on timeout)."""
from __future__ import annotations

import time

import pytest

from runner.errors import RunnerError
from runner.waits import WaitTimeout, wait_until


def test_returns_the_conditions_first_true_value():
    calls = iter([None, 0, "", {"batch": 3}])
    assert wait_until(lambda: next(calls), timeout_s=5, interval_s=0.01) == {"batch": 3}


def test_times_out_with_the_message_after_the_deadline():
    seen = []
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: seen.append(1), timeout_s=0.3, interval_s=0.05, message=lambda: f"{len(seen)} polls",
                   hint="start the broker")
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5.0
    assert isinstance(info.value, RunnerError) and info.value.hint == "start the broker"
    assert info.value.message == f"timed out after 0.3s waiting for {len(seen)} polls"
    assert len(seen) >= 2               # the first try, and once more at the deadline


def test_condition_raising_ends_the_wait():
    def exited():
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(exited, timeout_s=60)


def test_zero_timeout_still_tries_once():
    assert wait_until(lambda: 7, timeout_s=0) == 7
