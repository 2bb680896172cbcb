"""The embedded broker: a real single-node Apache Kafka (KRaft) from the jars in jvm/lib/broker.

For machines without Docker. `start` formats storage on first use, launches the JVM in
the background, waits (bounded) until the broker answers and writes a pid file; `stop`
ends that pid only. State lives in one folder (default .runtime/kafka).
"""
from __future__ import annotations

import contextlib

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.stream.jars import jars

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int
    data_dir: str

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def _state_file(data_dir: Path) -> Path:
    return data_dir / "broker.json"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if not java:
        raise RunnerError("java not found (the broker needs Java 17+)", hint="install OpenJDK 17 or set JAVA_HOME")
    return java


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap our own child, so it lingers as no zombie
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid is not our broker
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"kafka.Kafka" not in cmdline:
            return False
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return stat[0] != "Z"
    except OSError:
        return True


def read_state(data_dir: str | Path) -> BrokerState | None:
    """The broker recorded in data_dir, if its process is alive."""
    f = _state_file(Path(data_dir))
    if not f.exists():
        return None
    state = BrokerState(**json.loads(f.read_text()))
    return state if _alive(state.pid) else None


def _properties(data_dir: Path, port: int, controller_port: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",  # static quorum: format without --standalone
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _cluster_id() -> str:
    # Kafka's own format: 16 random bytes, URL-safe base64 without padding; like Kafka's
    # Uuid.randomUuid, never starting with '-', which the storage tool would read as an option.
    for _ in range(100):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
    raise RuntimeError("could not draw a cluster id")


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' when it can not be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _answers(port: int) -> bool:
    from runner.stream.kafka_clients import admin
    try:
        admin({"bootstrap.servers": f"{HOST}:{port}"}, timeout_s=2).close()
        return True
    except RunnerError:
        return False


def start(data_dir: str | Path, port: int = 9092, *, heap: str = "512m", timeout_s: float = START_TIMEOUT_S) -> BrokerState:
    data_dir = Path(data_dir).resolve()
    running = read_state(data_dir)
    if running:
        raise RunnerError(f"the broker is already running (pid {running.pid}, {running.bootstrap})",
                          hint="`runner kafka stop` first, or use it as it is")
    java = _java()
    classpath = ":".join(str(j) for j in jars("broker"))
    if not _port_free(port):
        raise RunnerError(f"port {port} on {HOST} is taken by another process",
                          hint="stop that process or pick another port with --port")
    data_dir.mkdir(parents=True, exist_ok=True)
    controller_port = free_port()
    props = data_dir / "server.properties"
    props.write_text(_properties(data_dir, port, controller_port))
    log = data_dir / "broker.log"
    log4j = data_dir / "log4j2.properties"
    log4j.write_text("rootLogger.level = WARN\n")

    if not (data_dir / "logs" / "meta.properties").exists():
        fmt = subprocess.run([java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                              "-t", _cluster_id(), "-c", str(props)],
                             capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise RunnerError(f"formatting the broker's storage in {data_dir} failed: "
                              f"{(fmt.stderr or fmt.stdout).strip().splitlines()[-1:]}")

    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             f"-Dlog4j2.configurationFile={log4j}",
             "-cp", classpath, "kafka.Kafka", str(props)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not reach it
        )
    state = BrokerState(pid=proc.pid, port=port, controller_port=controller_port, data_dir=str(data_dir))
    _state_file(data_dir).write_text(json.dumps(state.__dict__))

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _state_file(data_dir).unlink(missing_ok=True)
            raise RunnerError(f"the broker exited with code {proc.returncode} while starting; "
                              f"last lines of {log}:\n{tail(log)}")
        if _answers(port):
            return state
        time.sleep(0.5)
    stop(data_dir)
    raise RunnerError(f"the broker did not answer on {HOST}:{port} within {timeout_s:.0f}s; see {log}")


def stop(data_dir: str | Path, *, timeout_s: float = STOP_TIMEOUT_S) -> BrokerState | None:
    """Stop the broker recorded in data_dir (that pid only); None if none was running."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None:
        _state_file(data_dir).unlink(missing_ok=True)  # a stale record of a dead broker
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
        for _ in range(50):
            if not _alive(state.pid):
                break
            time.sleep(0.1)
    _state_file(data_dir).unlink(missing_ok=True)
    return state
