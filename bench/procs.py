"""The processes the benchmark measures: started as a user starts them, their memory sampled.

Each variant runs in a process of its own (its own session, so a stop signal reaches it and not
the benchmark), its output in a log file. `TreeRss` samples the resident memory of that process
and every process under it (the Spark driver JVM that pyspark starts, and its Python workers)
every 0.5 s, apart from the benchmark's own process and its load generator.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def runner_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("runner")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]


def spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def stop(proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """SIGTERM (apply stops its queries cleanly), wait; then SIGKILL the group if it is still there."""
    from runner.tools.processes import stop as stop_session
    stop_session(proc, timeout_s)


class TreeRss:
    """Peak resident memory of a process and its descendants, sampled every `every_s` seconds."""

    def __init__(self, pid: int, every_s: float = 0.5):
        self.pid = pid
        self.every_s = every_s
        self.peak = 0          # bytes, the whole tree at its largest sample
        self.peak_jvm = 0      # bytes, the largest sample of the java processes in it (all of them)
        self.peak_root = 0     # bytes, the largest sample of the process started (runner's Python)
        self.others: dict[str, int] = {}   # any other process in the tree (e.g. Python workers): peak bytes
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def sample(self) -> tuple[int, int, int] | None:
        """(whole tree, its java processes, the process started) resident bytes now; None once it is gone."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cmds: dict[int, list[str]] = {}
        for p in procs:
            with contextlib.suppress(psutil.Error):
                cmds[p.pid] = p.cmdline()
        total = jvm = own = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):   # a child that exited between list and read
                if p.pid not in cmds:
                    continue   # gone, or a zombie
                cmd = cmds[p.pid]
                if p.pid != self.pid and cmd and cmds.get(p.ppid()) == cmd:
                    # Forked and not yet exec'd (the driver JVM starts a command, e.g. Hadoop's readlink,
                    # through jspawnhelper): psutil shows the parent's resident pages again; make soak saw
                    # one-sample jumps of the JVM's whole RSS from them.
                    continue
                rss = p.memory_info().rss
                total += rss
                if p.pid == self.pid:
                    own = rss
                elif cmd and Path(cmd[0]).name == "java":   # the executable, whatever the process calls itself
                    jvm += rss
                else:
                    name = " ".join(cmd[:3])[:80] or p.name()
                    self.others[name] = max(self.others.get(name, 0), rss)
        return total, jvm, own

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.sample()
            if s:
                self.peak, self.peak_jvm, self.peak_root = (max(self.peak, s[0]), max(self.peak_jvm, s[1]),
                                                            max(self.peak_root, s[2]))
                self.samples += 1
            self._stop.wait(self.every_s)

    def __enter__(self) -> "TreeRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], log: Path, timeout_s: float) -> tuple[int, float, TreeRss]:
    """Run cmd to its end: (exit code, wall seconds from start to exit, its memory)."""
    t0 = time.monotonic()
    proc = spawn(cmd, log)
    with TreeRss(proc.pid) as rss:
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop(proc, timeout_s=30)
            raise RuntimeError(f"{' '.join(cmd[:4])}... did not finish within {timeout_s:.0f}s; see {log}") from None
    return code, time.monotonic() - t0, rss


def bench_result(log: Path) -> dict:
    """The `BENCH_RESULT {json}` line a bench child printed (bench/floor.py, bench/seed_pipeline.py)."""
    import json
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    raise RuntimeError(f"no BENCH_RESULT line in {log}")
