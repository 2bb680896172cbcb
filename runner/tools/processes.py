"""Supervising the processes the runner starts (the broker's nodes, the demo's train and apply,
the tests' subprocesses), on psutil: is it alive (and still the one we started), which
processes of a session are left, stop them with a bounded wait. No parsing of /proc by hand.

Processes are started in a session of their own (`start_new_session=True`), so Ctrl-C in the
caller's terminal does not reach them and their children (Spark's JVM) can be found by session.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil

from runner.waits import WaitTimeout, wait_until


def create_time(pid: int) -> float:
    """When pid started (seconds since the epoch), 0.0 if there is no such process."""
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).create_time()
    return 0.0


def alive(pid: int, *, started: float = 0.0, cmdline_has: str | None = None) -> bool:
    """Whether pid runs (a zombie does not), and, when given, is the process started at
    `started` (not a recycled pid) whose command line contains `cmdline_has`."""
    with contextlib.suppress(ChildProcessError):  # reap our own child, so it lingers as no zombie
        os.waitpid(pid, os.WNOHANG)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was recycled by another process
        return cmdline_has is None or cmdline_has in proc.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return False  # another user's process: never one we started


def in_sessions(pids) -> list[psutil.Process]:
    """Running (non-zombie) processes that are one of `pids` or in the session one of them leads:
    what is left of processes started with start_new_session=True, children included."""
    wanted = set(pids)
    left = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.pid in wanted or os.getsid(proc.pid) in wanted:
                left.append(proc)
    return left


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:120]}")
    return out


def signal_all(pids, sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(is_running, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Wait until `is_running()` is false; False if it still runs at the deadline."""
    try:
        wait_until(lambda: not is_running(), timeout_s=timeout_s, interval_s=interval_s, message="exit")
        return True
    except WaitTimeout:
        return False


def stop(proc: subprocess.Popen | None, timeout_s: float, *, session_grace_s: float = 20.0) -> None:
    """SIGTERM a process we started in its own session, wait up to `timeout_s`, then wait up to
    `session_grace_s` for its children (a JVM exits once its Python parent has gone), then
    SIGKILL whatever of its session is left. Returns once none of it runs."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    if not wait_gone(lambda: in_sessions([proc.pid]), session_grace_s):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
