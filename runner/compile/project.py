"""Read project.yml into a Project: vars, topics, sources, model, paths and the target.

Pure: reads one YAML file, touches neither Spark nor Kafka.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import RunnerError

PROJECT_FILE = "project.yml"
VAR_TYPES = ("double", "int", "interval", "string", "boolean")
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
# What may reach Spark from project.yml besides vars: Kafka topic names (Kafka's own rule),
# schema field names and types, and paths. None of them is ever pasted into SQL unquoted, but
# a value outside these shapes is a mistake (or an attempt), so it is refused up front.
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELD_TYPE = re.compile(r"^(STRING|DOUBLE|FLOAT|INT|INTEGER|BIGINT|LONG|SMALLINT|TINYINT|BOOLEAN|TIMESTAMP|DATE"
                        r"|DECIMAL\(\d{1,2}, ?\d{1,2}\))$", re.IGNORECASE)
_PATH_BAD = re.compile(r"[\x00-\x1f'\"`;]")
DEFAULT_KAFKA_WAIT_S = 30.0


@dataclass(frozen=True)
class VarSpec:
    name: str
    type: str
    value: Any


@dataclass(frozen=True)
class KafkaSource:
    name: str
    topic: str
    options: dict[str, str]
    schema: dict[str, str]  # field -> Spark SQL type, in order

    def ddl(self) -> str:
        return ", ".join(f"`{k}` {v}" for k, v in self.schema.items())


@dataclass(frozen=True)
class TopicSpec:
    """A topic as project.yml declares it, for ensure_topics to create when missing."""
    partitions: int = 1
    replication_factor: int | None = None  # None: the cluster's default.replication.factor
    configs: dict[str, str] = field(default_factory=dict)  # topic configs, e.g. min.insync.replicas


TOPIC_KEYS = ("partitions", "replication_factor", "configs")
_TOPIC_CONFIG = re.compile(r"^[a-z][a-z0-9.]*$")  # Kafka's topic config names: message.timestamp.type


@dataclass(frozen=True)
class Target:
    name: str
    master: str
    output_root: str
    checkpoint_root: str
    kafka: dict[str, str]            # kafka.* client options, secrets still as ${env:...}
    spark_conf: dict[str, str] = field(default_factory=dict)
    kafka_wait_s: float = DEFAULT_KAFKA_WAIT_S  # how long apply waits for the broker before giving up

    @property
    def bootstrap_servers(self) -> str:
        return str(self.kafka["bootstrap.servers"])

    def kafka_options(self) -> dict[str, str]:
        """Client options with ${env:NAME} references resolved; never write these out."""
        return {k: resolve_env(str(v), k) for k, v in self.kafka.items()}


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    vars: dict[str, VarSpec]
    topics: dict[str, TopicSpec]
    sources: dict[str, KafkaSource]
    model_path: Path
    sql_dir: Path
    target_dir: Path
    runtime_dir: Path
    target: Target
    targets: tuple[str, ...]

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    def path(self, value: str) -> str:
        """A project-relative path made absolute; URIs (s3a://, hdfs://, file:/) stay as they are."""
        if "://" in value or value.startswith("file:"):
            return value
        p = Path(value)
        return str(p if p.is_absolute() else (self.root / p).resolve())

    @property
    def output_root(self) -> str:
        return self.path(self.target.output_root)

    @property
    def checkpoint_root(self) -> str:
        return self.path(self.target.checkpoint_root)


def resolve_env(value: str, key: str = "") -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise RunnerError(f"{PROJECT_FILE}: '{key}' refers to ${{env:{name}}} but {name} is not set",
                              hint=f"export {name}=... before running")
        return os.environ[name]
    return _ENV_REF.sub(sub, value)


def check_topic(name: Any, where: str) -> str:
    name = str(name)
    if not TOPIC_NAME.match(name) or name in (".", ".."):
        raise RunnerError(f"{where}: {name!r} is not a valid Kafka topic name", where=PROJECT_FILE,
                          hint="topic names use only letters, digits, '.', '_' and '-' (at most 249)")
    return name


def check_path(value: Any, where: str) -> str:
    """A path from project.yml: no quotes, semicolons or control characters."""
    text = str(value)
    if not text.strip() or _PATH_BAD.search(text):
        raise RunnerError(f"{where}: {text!r} is not an acceptable path (empty, or has quotes, ';' "
                          "or control characters)", where=PROJECT_FILE,
                          hint="use plain folder names: letters, digits, '.', '_', '-' and '/'")
    return text


def _yaml_line(file: Path, *keys: str) -> str:
    """file:line of the mapping key at keys (e.g. topics, <name>) for error messages; the file
    alone when it can not be found. Only called on errors, so the second parse costs nothing."""
    try:
        node = yaml.compose(file.read_text())
        line = None
        for key in keys:
            node, line = next((v, k.start_mark.line + 1) for k, v in node.value if str(k.value) == key)
        return f"{file}:{line}"
    except Exception:  # noqa: BLE001 -- a message without a line number is still a message
        return str(file)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def topic_spec(name: Any, spec: Any, file: Path) -> TopicSpec:
    """topics.<name> from project.yml: partitions, replication_factor and configs, each checked."""
    where = _yaml_line(file, "topics", str(name))
    example = "{partitions: 2, replication_factor: 3, configs: {min.insync.replicas: 2}}"
    if spec is None:
        return TopicSpec()
    if not isinstance(spec, dict):
        raise RunnerError(f"topic '{name}' needs a mapping like {example}, got {spec!r}", where=where)
    unknown = sorted(str(k) for k in spec if k not in TOPIC_KEYS)
    if unknown:
        raise RunnerError(f"topic '{name}' has unknown key(s) {', '.join(unknown)}", where=where,
                          hint=f"a topic takes {', '.join(TOPIC_KEYS)}, e.g. {example}")
    partitions = spec.get("partitions", 1)
    if not _positive_int(partitions):
        raise RunnerError(f"topic '{name}': partitions must be a whole number >= 1, got {partitions!r}",
                          where=where)
    replication = spec.get("replication_factor")
    if replication is not None and not _positive_int(replication):
        raise RunnerError(f"topic '{name}': replication_factor must be a whole number >= 1, got {replication!r}",
                          where=where, hint="leave it out to use the cluster's default.replication.factor")
    configs = spec.get("configs") or {}
    if not isinstance(configs, dict):
        raise RunnerError(f"topic '{name}': configs must be a mapping of Kafka topic configs, got {configs!r}",
                          where=where, hint="e.g. configs: {min.insync.replicas: 2, retention.ms: 604800000}")
    for key, value in configs.items():
        if not _TOPIC_CONFIG.match(str(key)):
            raise RunnerError(f"topic '{name}': {key!r} is not a Kafka topic config name", where=where,
                              hint="topic configs are lower-case words joined by dots, e.g. min.insync.replicas")
        if isinstance(value, (dict, list)) or value is None:
            raise RunnerError(f"topic '{name}': configs.{key} must be a single value, got {value!r}", where=where)
    if replication is not None and "min.insync.replicas" in configs:
        min_isr = configs["min.insync.replicas"]
        if not _positive_int(min_isr) or min_isr > replication:
            raise RunnerError(f"topic '{name}': min.insync.replicas {min_isr!r} must be a whole number between 1 "
                              f"and its replication_factor ({replication})", where=where,
                              hint="else every acks=all write to it fails (NotEnoughReplicas)")
    return TopicSpec(partitions=partitions, replication_factor=replication,
                     configs={str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in configs.items()})


_ROOT_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(/.*)?$")


def check_root(value: Any, where: str) -> str:
    """checkpoint_root / output_root: a plain path, a file: URI, or a Hadoop filesystem URI with
    its host or bucket and a folder (hdfs://namenode:8020/fraud/checkpoints, s3a://bucket/fraud/out).
    Spark writes to any Hadoop filesystem and the runner reads through the same client
    (runner/stream/storage.py)."""
    text = check_path(value, where)
    m = _ROOT_URI.match(text)
    if not m or m.group(1).lower() == "file":
        return text
    scheme, authority, folder = m.group(1).lower(), m.group(2), (m.group(3) or "").strip("/")
    if not authority:
        raise RunnerError(f"{where}: {text!r} names no host or bucket", where=PROJECT_FILE,
                          hint=f"write {scheme}://<namenode:port or bucket>/<folder>, e.g. "
                               "hdfs://namenode:8020/fraud/checkpoints or s3a://my-bucket/fraud/checkpoints")
    if not folder:
        raise RunnerError(f"{where}: {text!r} names no folder", where=PROJECT_FILE,
                          hint=f"use a folder under it, e.g. {scheme}://{authority}/fraud/checkpoints "
                               "(reset archives beside the root, in <root>_archive)")
    return text


def _need(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise RunnerError(f"missing '{key}' in {where}", where=PROJECT_FILE,
                          hint=f"add '{key}:' to {where} (see the shipped project.yml)")
    return d[key]


def load_project(root: str | Path = ".", *, target: str | None = None, master: str | None = None) -> Project:
    root = Path(root).resolve()
    file = root / PROJECT_FILE
    if not file.exists():
        raise RunnerError(f"no {PROJECT_FILE} in {root}", hint="run the runner from the project folder or pass --project DIR")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise RunnerError(f"not valid YAML: {getattr(e, 'problem', e)}", where=where) from None

    vars_: dict[str, VarSpec] = {}
    for name, spec in (raw.get("vars") or {}).items():
        if not isinstance(spec, dict) or "type" not in spec or "value" not in spec:
            raise RunnerError(f"var '{name}' needs a type and a value, e.g. {{type: double, value: 0.9}}", where=str(file))
        if spec["type"] not in VAR_TYPES:
            raise RunnerError(f"var '{name}' has unknown type '{spec['type']}'", where=str(file),
                              hint=f"use one of {', '.join(VAR_TYPES)}")
        vars_[name] = VarSpec(name, spec["type"], spec["value"])

    topics = {check_topic(t, "topics"): topic_spec(t, spec, file) for t, spec in (raw.get("topics") or {}).items()}

    sources: dict[str, KafkaSource] = {}
    for name, spec in ((raw.get("sources") or {}).get("kafka") or {}).items():
        where = f"sources.kafka.{name}"
        if not FIELD_NAME.match(str(name)):
            raise RunnerError(f"source name {name!r} must be an identifier", where=PROJECT_FILE)
        schema = {str(k): str(v).strip() for k, v in (_need(spec, "schema", where) or {}).items()}
        for k, v in schema.items():
            if not FIELD_NAME.match(k):
                raise RunnerError(f"{where}.schema: field name {k!r} must be an identifier", where=PROJECT_FILE)
            if not FIELD_TYPE.match(v):
                raise RunnerError(f"{where}.schema.{k}: unsupported type {v!r}", where=PROJECT_FILE,
                                  hint="use STRING, DOUBLE, INT, BIGINT, BOOLEAN, TIMESTAMP, DATE or DECIMAL(p,s)")
        sources[name] = KafkaSource(
            name=name,
            topic=check_topic(_need(spec, "topic", where), f"{where}.topic"),
            options={k: str(v) for k, v in (spec.get("options") or {}).items()},
            schema=schema,
        )

    targets = raw.get("targets") or {}
    tname = target or raw.get("default_target") or "local"
    if tname not in targets:
        raise RunnerError(f"unknown target '{tname}'", where=str(file),
                          hint=f"targets defined: {', '.join(targets) or 'none'}")
    t = targets[tname]
    wait = t.get("kafka_wait_s", DEFAULT_KAFKA_WAIT_S)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 < wait <= 3600:
        raise RunnerError(f"targets.{tname}.kafka_wait_s must be a number of seconds (0, 3600], got {wait!r}",
                          where=str(file))
    tgt = Target(
        name=tname,
        master=master or str(t.get("master", "local[*]")),
        output_root=check_root(t.get("output_root", "output"), f"targets.{tname}.output_root"),
        checkpoint_root=check_root(t.get("checkpoint_root", "checkpoints"), f"targets.{tname}.checkpoint_root"),
        kafka={str(k): str(v) for k, v in _need(t, "kafka", f"targets.{tname}").items()},
        spark_conf={str(k): str(v) for k, v in (t.get("spark_conf") or {}).items()},
        kafka_wait_s=float(wait),
    )
    _need(tgt.kafka, "bootstrap.servers", f"targets.{tname}.kafka")

    paths = {k: check_path(v, f"paths.{k}") for k, v in (raw.get("paths") or {}).items()}
    check_path(raw.get("model", "models/fraud_lr"), "model")
    return Project(
        root=root,
        name=str(raw.get("name", root.name)),
        vars=vars_,
        topics=topics,
        sources=sources,
        model_path=root / str(raw.get("model", "models/fraud_lr")),
        sql_dir=root / str(paths.get("sql", "sql")),
        target_dir=root / str(paths.get("target", "target")),
        runtime_dir=root / str(paths.get("runtime", ".runtime")),
        target=tgt,
        targets=tuple(targets),
    )
