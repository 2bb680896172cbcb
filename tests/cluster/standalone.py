"""A real Spark standalone cluster on 127.0.0.1, from pyspark's own distribution.

One master and one worker, each a `spark-class` JVM started in its own process group;
every wait is bounded, and `stop()` ends them (and the executors the worker launched)
by the ids this object recorded, so no process outlives the test.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pyspark

from runner.tools.kafka_local import free_port

HOST = "127.0.0.1"
SPARK_HOME = Path(pyspark.__file__).resolve().parent


class ClusterError(RuntimeError):
    """The standalone cluster did not start or stop as asked."""


class StandaloneCluster:
    """`with StandaloneCluster(work_dir) as c: ... c.url ...`"""

    def __init__(self, work_dir: Path, *, cores: int = 1, memory: str = "1g", daemon_memory: str = "256m"):
        self.work_dir = Path(work_dir)
        self.cores, self.memory = cores, memory
        self.port, self.webui = free_port(), free_port()
        self.worker_webui = free_port()
        self.url = f"spark://{HOST}:{self.port}"
        self.worker_dir = self.work_dir / "worker"
        self.env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": HOST,
                    "SPARK_WORKER_DIR": str(self.worker_dir), "SPARK_LOG_DIR": str(self.work_dir / "logs"),
                    "SPARK_DAEMON_MEMORY": daemon_memory}
        self.procs: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "StandaloneCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.work_dir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], env=self.env,
                                            cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def start(self, timeout_s: float = 90.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.worker_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", HOST,
                    "--port", str(self.port), "--webui-port", str(self.webui))
        self._wait(lambda s: s.get("status") == "ALIVE", "the master to be ALIVE", timeout_s)
        self._spawn("worker", "org.apache.spark.deploy.worker.Worker", "--host", HOST,
                    "--cores", str(self.cores), "--memory", self.memory,
                    "--webui-port", str(self.worker_webui), "--work-dir", str(self.worker_dir), self.url)
        self._wait(lambda s: any(w.get("state") == "ALIVE" for w in s.get("workers", [])),
                   "the worker to register with the master", timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM each process group we started (the worker's holds its executors), then SIGKILL."""
        for name in ("worker", "master"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            _signal_group(proc.pid, signal.SIGKILL)  # anything left in the group (an executor JVM)
        self.procs.clear()

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        """The master's JSON view: status, workers, activeapps, completedapps."""
        with urllib.request.urlopen(f"http://{HOST}:{self.webui}/json/", timeout=5) as r:
            return json.loads(r.read())

    def _wait(self, ok, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(f"spark {name} exited with {proc.returncode} while waiting for {what}:\n"
                                       + self.log_tail(name))
            try:
                state = self.state()
                if ok(state):
                    return
                last = state
            except OSError as e:  # not listening yet
                last = e
            time.sleep(0.5)
        raise ClusterError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last})\n"
                           + "\n".join(self.log_tail(n) for n in self.procs))

    def log_tail(self, name: str, chars: int = 3000) -> str:
        f = self.work_dir / f"{name}.log"
        return f"--- {name}.log\n" + (f.read_text(errors="replace")[-chars:] if f.exists() else "(none)")

    def executor_logs(self) -> list[Path]:
        """stderr of every executor the worker launched: <worker dir>/app-*/<executor id>/stderr."""
        return sorted(self.worker_dir.glob("app-*/*/stderr"))


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
