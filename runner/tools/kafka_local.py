"""The embedded broker: a real Apache Kafka (KRaft) from the jars in jvm/lib/broker, one node or
a local cluster of several.

For machines without Docker. `start` formats storage on first use, launches the JVMs in the
background, waits (bounded) until every node answers and records them in DATA_DIR/broker.json;
`stop` ends those pids only. A `Registry` (a folder of small files, one per data folder) lets
the CLI find a broker started with `--data-dir DIR` again without being told DIR.

Layout: a single broker keeps its files in the data folder itself (server.properties, logs/,
broker.log), as it always did; node N of a cluster keeps them in DATA_DIR/node-N/. Every node of
a cluster is broker and controller (combined mode) and the nodes form a static controller quorum
(`controller.quorum.voters`, storage formatted without --standalone), so with three nodes any one
may die: two voters remain a majority, and topics replicated three times with
min.insync.replicas=2 still take acks=all writes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from runner.errors import RunnerError
from runner.stream.jars import jars
from runner.tools import processes
from runner.waits import WaitTimeout, wait_until

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
MAX_BROKERS = 5
STATE_FILE = "broker.json"
MAIN_CLASS = "kafka.Kafka"


@dataclass(frozen=True)
class Node:
    """One broker process."""
    node_id: int
    pid: int
    port: int
    controller_port: int
    started: float = 0.0  # the process's create time: a recycled pid is not taken for our broker

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return _alive(self.pid, self.started)


@dataclass(frozen=True)
class BrokerState:
    """What `start` recorded: the data folder and its node(s)."""
    data_dir: str
    nodes: tuple[Node, ...]

    @property
    def bootstrap(self) -> str:
        """Every node's address, so a client bootstraps even while one node is down."""
        return ",".join(n.address for n in self.nodes)

    # The first node's pid and ports: what a single broker's callers have always used.
    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def controller_port(self) -> int:
        return self.nodes[0].controller_port

    @property
    def brokers(self) -> int:
        return len(self.nodes)

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise RunnerError(f"the Kafka in {self.data_dir} has no node {node_id} "
                          f"(nodes {', '.join(str(n.node_id) for n in self.nodes)})")

    def node_dir(self, node_id: int) -> Path:
        return _node_dir(Path(self.data_dir), node_id, self.brokers)

    def to_json(self) -> str:
        return json.dumps({"data_dir": self.data_dir, "nodes": [asdict(n) for n in self.nodes]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> BrokerState:
        raw = json.loads(text)
        if "nodes" not in raw:  # written by a runner from before clusters: one broker, node 1
            return cls(data_dir=raw["data_dir"], nodes=(Node(1, raw["pid"], raw["port"], raw["controller_port"]),))
        return cls(data_dir=raw["data_dir"], nodes=tuple(Node(**n) for n in raw["nodes"]))


def _node_dir(data_dir: Path, node_id: int, brokers: int) -> Path:
    return data_dir if brokers == 1 else data_dir / f"node-{node_id}"


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


def _free_ports(n: int, taken: set[int]) -> list[int]:
    """n distinct free ports, none of them in `taken` (the OS may hand out a port twice in a row)."""
    out: list[int] = []
    while len(out) < n:
        p = free_port()
        if p not in taken and p not in out:
            out.append(p)
    return out


def _alive(pid: int, started: float = 0.0) -> bool:
    """Whether pid is a running Kafka broker (and, when `started` is known, the one we started)."""
    return processes.alive(pid, started=started, cmdline_has=MAIN_CLASS)


def recorded(data_dir: str | Path) -> BrokerState | None:
    """What start recorded in data_dir, whether or not its processes still run."""
    f = Path(data_dir) / STATE_FILE
    try:
        return BrokerState.from_json(f.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as e:
        raise RunnerError(f"{f} is not a broker record ({e})",
                          hint="stop any Kafka using that folder by hand, then delete the file") from None


def read_state(data_dir: str | Path) -> BrokerState | None:
    """The broker (or cluster) recorded in data_dir, if at least one of its processes is alive."""
    state = recorded(data_dir)
    return state if state and any(n.running for n in state.nodes) else None


def _write_state(state: BrokerState) -> None:
    from runner.files import write_atomic
    write_atomic(Path(state.data_dir) / STATE_FILE, state.to_json())  # a reader never sees half a record


def _properties(node_dir: Path, node_id: int, port: int, voters: dict[int, int]) -> str:
    """server.properties of one node; voters maps node id -> controller port (all nodes)."""
    n = len(voters)
    min_isr = str(min(2, n))  # with 3 replicas, acks=all writes go on while one node is down
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # static quorum: every node lists all voters, storage is formatted without --standalone
        "controller.quorum.voters": ",".join(f"{i}@{HOST}:{cp}" for i, cp in sorted(voters.items())),
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{voters[node_id]}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node_dir / "logs"),
        "num.partitions": "1",
        # topics created without a replication factor (the runner's ensure_topics passes none
        # unless project.yml says so) get one replica per node, and so do the internal topics
        "default.replication.factor": str(n),
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": str(n),
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": str(n),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(n),
        "share.coordinator.state.topic.min.isr": min_isr,
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


def _formatted_cluster_id(node_dir: Path) -> str | None:
    meta = node_dir / "logs" / "meta.properties"
    if not meta.exists():
        return None
    for line in meta.read_text().splitlines():
        if line.startswith("cluster.id="):
            return line.split("=", 1)[1].strip()
    return None


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' when it can not be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _brokers_registered(bootstrap: str, expected: int) -> bool:
    """Whether the cluster answers and all `expected` brokers have registered with it."""
    from runner.stream.kafka_clients import admin
    try:
        client = admin({"bootstrap.servers": bootstrap}, timeout_s=2)
    except RunnerError:
        return False
    try:
        return len(client.describe_cluster().get("brokers", [])) >= expected
    except Exception:  # any client error while starting means "not yet"
        return False
    finally:
        client.close()


def _check_layout(data_dir: Path, brokers: int) -> None:
    """A data folder formatted for one broker is not silently reused for a cluster, or back."""
    single = (data_dir / "logs" / "meta.properties").exists()
    nodes = sorted(p.name for p in data_dir.glob("node-*") if (p / "logs" / "meta.properties").exists())
    if brokers == 1 and nodes:
        raise RunnerError(f"{data_dir} holds a {len(nodes)}-broker cluster",
                          hint=f"start it with --brokers {len(nodes)}, or pick another --data-dir")
    if brokers > 1 and single:
        raise RunnerError(f"{data_dir} holds a single broker's storage",
                          hint="start it without --brokers, or pick another --data-dir for the cluster")
    if brokers > 1 and nodes and len(nodes) != brokers:
        raise RunnerError(f"{data_dir} holds a {len(nodes)}-broker cluster, not {brokers}",
                          hint=f"start it with --brokers {len(nodes)}, or pick another --data-dir")


def _launch(java: str, classpath: str, node_dir: Path, heap: str) -> subprocess.Popen:
    log4j = node_dir / "log4j2.properties"
    log4j.write_text("rootLogger.level = WARN\n")
    with open(node_dir / "broker.log", "ab") as out:
        return subprocess.Popen(
            [java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             f"-Dlog4j2.configurationFile={log4j}",
             "-cp", classpath, MAIN_CLASS, str(node_dir / "server.properties")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not reach it
        )


_create_time = processes.create_time


def _wait_until_up(state: BrokerState, procs: dict[int, subprocess.Popen], timeout_s: float) -> None:
    """Until every node has registered; a node that exits meanwhile stops the others and fails."""
    def registered() -> bool:
        for node_id, proc in procs.items():
            if proc.poll() is not None:
                log = state.node_dir(node_id) / "broker.log"
                stop(state.data_dir)
                raise RunnerError(f"Kafka node {node_id} exited with code {proc.returncode} while starting; "
                                  f"last lines of {log}:\n{tail(log)}")
        return _brokers_registered(state.bootstrap, state.brokers)

    try:
        wait_until(registered, timeout_s=timeout_s, interval_s=0.5)
    except WaitTimeout:
        stop(state.data_dir)
        raise RunnerError(f"Kafka did not answer on {state.bootstrap} with {state.brokers} broker(s) within "
                          f"{timeout_s:.0f}s; see broker.log in {state.data_dir}") from None


def start(data_dir: str | Path, port: int = 9092, *, brokers: int = 1, heap: str | None = None,
          timeout_s: float = START_TIMEOUT_S) -> BrokerState:
    """Start `brokers` Kafka nodes on 127.0.0.1 with data in data_dir; node 1 listens on `port`,
    the others on free ports. Returns once every node answers.

    A cluster whose record shows some nodes down gets those nodes started again on their
    recorded ports (see start_node); if every node runs, this is refused."""
    if not 1 <= brokers <= MAX_BROKERS:
        raise RunnerError(f"--brokers must be between 1 and {MAX_BROKERS}, got {brokers}")
    data_dir = Path(data_dir).resolve()
    heap = heap or ("512m" if brokers == 1 else "384m")  # three JVMs share a small machine
    running = read_state(data_dir)
    if running:
        down = [n.node_id for n in running.nodes if not n.running]
        if not down:
            raise RunnerError(f"the broker is already running (pid {running.pid}, {running.bootstrap})"
                              if running.brokers == 1 else
                              f"the {running.brokers}-broker cluster is already running ({running.bootstrap})",
                              hint="`runner kafka stop` first, or use it as it is")
        for node_id in down:
            running = start_node(data_dir, node_id, heap=heap, timeout_s=timeout_s)
        return running
    java = _java()
    classpath = ":".join(str(j) for j in jars("broker"))
    if not _port_free(port):
        raise RunnerError(f"port {port} on {HOST} is taken by another process",
                          hint="stop that process or pick another port with --port")
    _check_layout(data_dir, brokers)
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = [port, *_free_ports(brokers - 1, {port})]
    controller_ports = _free_ports(brokers, set(ports))
    voters = {i + 1: controller_ports[i] for i in range(brokers)}
    node_dirs = {i: _node_dir(data_dir, i, brokers) for i in voters}
    cluster_id = next((c for d in node_dirs.values() if (c := _formatted_cluster_id(d))), None) or _cluster_id()
    formats = {}
    for i, node_dir in node_dirs.items():
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "server.properties").write_text(_properties(node_dir, i, ports[i - 1], voters))
        if _formatted_cluster_id(node_dir) is None:  # first use; every node gets the same cluster id
            formats[node_dir] = subprocess.Popen(  # in parallel: each is a JVM start of a few seconds
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(node_dir / "server.properties")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    for node_dir, fmt in formats.items():
        out, _ = fmt.communicate(timeout=120)
        if fmt.returncode != 0:
            raise RunnerError(f"formatting Kafka's storage in {node_dir} failed: "
                              f"{out.strip().splitlines()[-1:]}")

    procs = {i: _launch(java, classpath, d, heap) for i, d in node_dirs.items()}
    state = BrokerState(data_dir=str(data_dir), nodes=tuple(
        Node(i, procs[i].pid, ports[i - 1], voters[i], _create_time(procs[i].pid)) for i in voters))
    _write_state(state)
    _wait_until_up(state, procs, timeout_s)
    return state


def start_node(data_dir: str | Path, node_id: int, *, heap: str = "384m",
               timeout_s: float = START_TIMEOUT_S) -> BrokerState:
    """Start one recorded node again (after it died or was killed), on its recorded ports, and
    wait until the cluster counts it again. Its properties still name the other voters' ports."""
    data_dir = Path(data_dir).resolve()
    state = recorded(data_dir)
    if state is None:
        raise RunnerError(f"no Kafka recorded in {data_dir}", hint="start it with `runner kafka start`")
    node = state.node(node_id)
    if node.running:
        raise RunnerError(f"Kafka node {node_id} in {data_dir} is already running (pid {node.pid})")
    for p in (node.port, node.controller_port):
        if not _port_free(p):
            raise RunnerError(f"port {p} on {HOST}, recorded for Kafka node {node_id}, is taken by another process",
                              hint="stop that process, or `runner kafka stop` and start the whole cluster again")
    java = _java()
    classpath = ":".join(str(j) for j in jars("broker"))
    proc = _launch(java, classpath, state.node_dir(node_id), heap)
    fresh = replace(node, pid=proc.pid, started=_create_time(proc.pid))
    state = replace(state, nodes=tuple(fresh if n.node_id == node_id else n for n in state.nodes))
    _write_state(state)
    alive = {n.node_id for n in state.nodes if n.running}

    def registered() -> bool:
        if proc.poll() is not None:
            log = state.node_dir(node_id) / "broker.log"
            raise RunnerError(f"Kafka node {node_id} exited with code {proc.returncode} while starting; "
                              f"last lines of {log}:\n{tail(log)}")
        return _brokers_registered(fresh.address, len(alive))

    wait_until(registered, timeout_s=timeout_s, interval_s=0.5,
               message=f"Kafka node {node_id} to answer on {fresh.address}",
               hint=f"see {state.node_dir(node_id) / 'broker.log'}")
    return state


def _terminate(nodes: tuple[Node, ...], timeout_s: float) -> None:
    """SIGTERM to every node at once, then wait; SIGKILL what is left at the deadline.

    All at once, not one by one: a node stopping last alone would wait in vain for a controller
    quorum (two of three voters) to hand its partitions over, until the deadline."""
    nodes = tuple(n for n in nodes if n.running)
    processes.signal_all([n.pid for n in nodes], signal.SIGTERM)
    if not processes.wait_gone(lambda: any(n.running for n in nodes), timeout_s):
        processes.signal_all([n.pid for n in nodes if n.running], signal.SIGKILL)
        processes.wait_gone(lambda: any(n.running for n in nodes), 5, interval_s=0.1)


def stop(data_dir: str | Path, *, timeout_s: float = STOP_TIMEOUT_S) -> BrokerState | None:
    """Stop the broker(s) recorded in data_dir (those pids only); None if none was running."""
    data_dir = Path(data_dir).resolve()
    state = read_state(data_dir)
    if state is None:
        (data_dir / STATE_FILE).unlink(missing_ok=True)  # a stale record of a dead broker
        return None
    _terminate(state.nodes, timeout_s)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return state


class Registry:
    """The data folders of brokers the CLI started, one small file each in one folder (the
    project's runtime dir), so `kafka stop` and `kafka status` find a broker started with
    `--data-dir DIR` without being told DIR again. The data folder's broker.json stays the only
    record of pids and ports; an entry whose folder runs no broker any more is stale and removed
    when read."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _entry(self, data_dir: Path) -> Path:
        return self.folder / f"{hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]}.json"

    def add(self, data_dir: str | Path) -> None:
        data_dir = Path(data_dir).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._entry(data_dir).write_text(json.dumps({"data_dir": str(data_dir)}))

    def remove(self, data_dir: str | Path) -> None:
        self._entry(Path(data_dir).resolve()).unlink(missing_ok=True)

    def running(self) -> list[BrokerState]:
        """The registered brokers that run (at least one node alive); stale entries are deleted."""
        out = []
        for entry in sorted(self.folder.glob("*.json")):
            try:
                data_dir = json.loads(entry.read_text())["data_dir"]
                state = read_state(data_dir)
            except (OSError, ValueError, KeyError, TypeError, RunnerError):
                state = None
            if state is None:
                entry.unlink(missing_ok=True)
            else:
                out.append(state)
        return out


def locate(default_dir: str | Path, registry: Registry) -> Path:
    """The data folder `kafka stop`/`status` mean when given no --data-dir: the default folder
    if a broker runs there, else the one running broker the registry knows, else the default
    (which then reports "not running"). Several running brokers are an error naming them."""
    default_dir = Path(default_dir).resolve()
    found = {}
    if read_state(default_dir):
        found[str(default_dir)] = read_state(default_dir)
    for state in registry.running():
        found.setdefault(state.data_dir, state)
    if len(found) > 1:
        listing = "; ".join(f"{d} ({s.bootstrap})" for d, s in found.items())
        raise RunnerError(f"several local Kafka brokers run: {listing}", hint="pass --data-dir DIR to pick one")
    return Path(next(iter(found), default_dir))
