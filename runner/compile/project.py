"""Read project.yml into a Project: vars, topics, sources, model, paths and the target.

Pure: reads one YAML file, touches neither Spark nor Kafka. What project.yml may say is declared
as pydantic models (ProjectFile and its sections, below); the first thing wrong becomes one
RunnerError naming project.yml and the line of the entry.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from runner.compile import vartypes
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
DEFAULT_METRICS_HOST = "127.0.0.1"   # metrics are served to this machine only unless a target says otherwise


@dataclass(frozen=True)
class VarSpec:
    name: str
    type: str
    value: Any
    rules: vartypes.VarRules | None = None   # what its values mean: min/max, choices (None: any value of the type)


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
    metrics_port: int | None = None  # apply serves Prometheus metrics there (runner/stream/metrics.py); None: off
    metrics_host: str = DEFAULT_METRICS_HOST

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

    def var_where(self, name: str) -> str:
        """project.yml:LINE of var `name`'s declaration, for errors about its value or rules."""
        return _yaml_line(self.file, "vars", name)

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


# --------------------------------------------------------------------------- project.yml, declared
# The shape of project.yml as pydantic models: each section, its keys, their types and defaults,
# and the rule each value follows. A rule says what is wrong, and what to do, by raising Refused;
# `load_project` turns the first problem into one RunnerError naming project.yml and the line of
# the entry (from pydantic's location of the error). Every target is checked, not only the one
# in use, so a broken target is found before the day it is needed.

class Refused(ValueError):
    """A rule's verdict: what is wrong, and what to do (the RunnerError's hint)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _topic_name(value: Any) -> str:
    name = str(value)
    if not TOPIC_NAME.match(name) or name in (".", ".."):
        raise Refused(f"{name!r} is not a valid Kafka topic name",
                      "topic names use only letters, digits, '.', '_' and '-' (at most 249)")
    return name


def _plain_path(value: Any) -> str:
    text = str(value)
    if not text.strip() or _PATH_BAD.search(text):
        raise Refused(f"{text!r} is not an acceptable path (empty, or has quotes, ';' or control characters)",
                      "use plain folder names: letters, digits, '.', '_', '-' and '/'")
    return text


_ROOT_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(/.*)?$")


def _root(value: Any) -> str:
    """checkpoint_root / output_root: a plain path, a file: URI, or a Hadoop filesystem URI with
    its host or bucket and a folder (hdfs://namenode:8020/fraud/checkpoints, s3a://bucket/fraud/out).
    Spark writes to any Hadoop filesystem and the runner reads through the same client
    (runner/stream/storage.py)."""
    text = _plain_path(value)
    m = _ROOT_URI.match(text)
    if not m or m.group(1).lower() == "file":
        return text
    scheme, authority, folder = m.group(1).lower(), m.group(2), (m.group(3) or "").strip("/")
    if not authority:
        raise Refused(f"{text!r} names no host or bucket",
                      f"write {scheme}://<namenode:port or bucket>/<folder>, e.g. "
                      "hdfs://namenode:8020/fraud/checkpoints or s3a://my-bucket/fraud/checkpoints")
    if not folder:
        raise Refused(f"{text!r} names no folder", f"use a folder under it, e.g. {scheme}://{authority}/fraud/"
                      "checkpoints (reset archives beside the root, in <root>_archive)")
    return text


def _identifier(what: str):
    def check(value: Any) -> str:
        if not FIELD_NAME.match(str(value)):
            raise ValueError(f"{what} {value!r} must be an identifier")
        return str(value)
    return check


def _field_type(value: Any) -> str:
    text = str(value).strip()
    if not FIELD_TYPE.match(text):
        raise Refused(f"unsupported type {value!r}",
                      "use STRING, DOUBLE, INT, BIGINT, BOOLEAN, TIMESTAMP, DATE or DECIMAL(p,s)")
    return text


def _text(value: Any) -> str:
    return str(value)


TopicName = Annotated[Any, AfterValidator(_topic_name)]
Text = Annotated[Any, AfterValidator(_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")   # comments-as-keys and later additions stay readable


class VarDecl(BaseModel):
    """A var: its type, its value, and what its values mean (runner/compile/vartypes.py: min or
    min_exclusive, max or max_exclusive, choices). Unknown keys are refused: a misspelt rule
    (`maximum: 1`) would otherwise check nothing and look as if it did."""
    model_config = ConfigDict(extra="forbid")
    type: Literal[VAR_TYPES]   # a tuple of literals
    value: Any
    min: Any = None
    min_exclusive: Any = None
    max: Any = None
    max_exclusive: Any = None
    choices: Any = None
    _rules: vartypes.VarRules = PrivateAttr()

    @model_validator(mode="after")
    def _declared_rules(self):
        try:
            self._rules = vartypes.declare(self.type, {k: getattr(self, k) for k in vartypes.RULE_KEYS})
        except ValueError as e:
            raise Refused(str(e), vartypes.RULES_HINT) from None
        return self

    @property
    def rules(self) -> vartypes.VarRules:
        return self._rules


class TopicDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)
    partitions: Any = 1
    replication_factor: Any = None
    configs: Any = None

    @field_validator("partitions")
    @classmethod
    def _partitions(cls, v: Any) -> int:
        if not _is_whole(v):
            raise ValueError(f"partitions must be a whole number >= 1, got {v!r}")
        return v

    @field_validator("replication_factor")
    @classmethod
    def _replication(cls, v: Any) -> int | None:
        if v is not None and not _is_whole(v):
            raise Refused(f"replication_factor must be a whole number >= 1, got {v!r}",
                          "leave it out to use the cluster's default.replication.factor")
        return v

    @field_validator("configs")
    @classmethod
    def _configs(cls, v: Any) -> dict:
        v = v or {}
        if not isinstance(v, dict):
            raise Refused(f"configs must be a mapping of Kafka topic configs, got {v!r}",
                          "e.g. configs: {min.insync.replicas: 2, retention.ms: 604800000}")
        for key, value in v.items():
            if not _TOPIC_CONFIG.match(str(key)):
                raise Refused(f"{key!r} is not a Kafka topic config name",
                              "topic configs are lower-case words joined by dots, e.g. min.insync.replicas")
            if isinstance(value, (dict, list)) or value is None:
                raise ValueError(f"configs.{key} must be a single value, got {value!r}")
        return v

    @model_validator(mode="after")
    def _min_isr_fits(self):
        if self.replication_factor is not None and "min.insync.replicas" in self.configs:
            min_isr = self.configs["min.insync.replicas"]
            if not _is_whole(min_isr) or min_isr > self.replication_factor:
                raise Refused(f"min.insync.replicas {min_isr!r} must be a whole number between 1 and its "
                              f"replication_factor ({self.replication_factor})",
                              "else every acks=all write to it fails (NotEnoughReplicas)")
        return self

    def spec(self) -> TopicSpec:
        return TopicSpec(partitions=self.partitions, replication_factor=self.replication_factor,
                         configs={str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                                  for k, v in self.configs.items()})


class SourceDecl(_Section):
    topic: TopicName
    options: dict[Text, Text] = {}
    schema_: dict[Annotated[Any, AfterValidator(_identifier("field name"))],
                  Annotated[Any, AfterValidator(_field_type)]] = Field(alias="schema")


class SourcesDecl(_Section):
    kafka: dict[Annotated[Any, AfterValidator(_identifier("source name"))], SourceDecl] | None = None


class TargetDecl(_Section):
    master: Text = "local[*]"
    output_root: Annotated[Any, AfterValidator(_root)] = "output"
    checkpoint_root: Annotated[Any, AfterValidator(_root)] = "checkpoints"
    kafka: dict[Text, Text]
    spark_conf: dict[Text, Text] | None = None
    kafka_wait_s: Any = DEFAULT_KAFKA_WAIT_S
    metrics_port: Any = None
    metrics_host: Any = DEFAULT_METRICS_HOST

    @field_validator("metrics_port")
    @classmethod
    def _metrics_port(cls, v: Any) -> int | None:
        if v is not None and not (_is_whole(v) and v <= 65535):
            raise Refused(f"metrics_port must be a TCP port 1-65535, got {v!r}",
                          "leave it out to serve no metrics (or pass `runner apply --metrics-port PORT`)")
        return v

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, v: Any) -> str:
        if not isinstance(v, str) or not v.strip() or any(c.isspace() for c in v):
            raise Refused(f"metrics_host must be an address to bind, got {v!r}",
                          f"{DEFAULT_METRICS_HOST} (the default) for this machine only; 0.0.0.0 for every interface")
        return v

    @field_validator("kafka_wait_s")
    @classmethod
    def _wait(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3600:
            raise ValueError(f"kafka_wait_s must be a number of seconds (0, 3600], got {v!r}")
        return float(v)

    @field_validator("kafka")
    @classmethod
    def _bootstrap(cls, v: dict) -> dict:
        if "bootstrap.servers" not in v:
            raise Refused("missing 'bootstrap.servers'", "add 'bootstrap.servers:' to the target's kafka "
                                                         "(see the shipped project.yml)")
        return v


class ProjectFile(_Section):
    name: Text | None = None
    vars: dict[Text, VarDecl] | None = None
    topics: dict[TopicName, TopicDecl | None] | None = None
    sources: SourcesDecl | None = None
    model: Annotated[Any, AfterValidator(_plain_path)] = "models/fraud_lr"
    paths: dict[Text, Annotated[Any, AfterValidator(_plain_path)]] | None = None
    default_target: Text | None = None
    targets: dict[Text, TargetDecl] | None = None


def _yaml_line(file: Path, *keys: Any) -> str:
    """file:line of the deepest mapping key of `keys` found (e.g. topics, <name>), for error
    messages; the file alone when none is. Only called on errors, so the second parse costs nothing."""
    try:
        node, line = yaml.compose(file.read_text()), None
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            found = next(((v, k.start_mark.line + 1) for k, v in node.value if str(k.value) == str(key)), None)
            if found is None:
                break
            node, line = found
        return f"{file}:{line}" if line else str(file)
    except Exception:  # a message without a line number is still a message
        return str(file)


# How an error's place reads in the message, by section: topics.<name> -> "topic '<name>'".
def _subject(loc: tuple) -> tuple[str, int]:
    """The words naming where the problem is, and how many loc parts they stand for."""
    if loc[:1] == ("topics",) and len(loc) >= 2:
        return f"topic '{loc[1]}'", 2
    if loc[:1] == ("vars",) and len(loc) >= 2:
        return f"var '{loc[1]}'", 2
    return ".".join(str(x) for x in loc), len(loc)


_KEY = "[key]"   # pydantic's loc part for a dict key that failed its rule


def _problem(e: ValidationError, raw: dict, file: Path) -> RunnerError:
    err = e.errors(include_url=False)[0]
    loc = tuple(x for x in err["loc"] if x != _KEY and not str(x).startswith("function-"))
    is_key = _KEY in err["loc"]
    subject, used = _subject(loc)
    where = _yaml_line(file, *loc[:used] if loc[:1] == ("topics",) else loc)
    kind = err["type"]
    if kind == "value_error":
        refusal = err["ctx"]["error"]
        what, hint = str(refusal), getattr(refusal, "hint", None)
        if is_key:   # a mapping key broke its rule: name the mapping, not the key twice
            parent = ".".join(str(x) for x in loc[:-1]) or loc[-1]
            return RunnerError(f"{parent}: {what}", where=where, hint=hint)
        if loc and used == len(loc) and what.startswith(f"{loc[-1]} "):   # the rule names its key itself
            return RunnerError(f"{'.'.join(str(x) for x in loc[:-1])}.{what}", where=where, hint=hint)
        return RunnerError(f"{subject}: {what}" if subject else what, where=where, hint=hint)
    if kind in ("model_type", "model_attributes_type", "dict_type") and len(loc) == 2 and loc[0] in ("vars", "topics"):
        return RunnerError(f"{subject} needs a mapping like "
                           + ("{type: double, value: 0.9}" if loc[0] == "vars" else
                              "{partitions: 2, replication_factor: 3, configs: {min.insync.replicas: 2}}")
                           + f", got {err['input']!r}", where=where)
    if kind == "extra_forbidden" and loc[:1] == ("vars",):
        return RunnerError(f"{_subject(loc[:-1])[0]} has unknown key {loc[-1]!r}", where=where,
                           hint=f"a var takes type, value and the rules {', '.join(vartypes.RULE_KEYS)}")
    if kind == "extra_forbidden":
        return RunnerError(f"{_subject(loc[:-1])[0]} has unknown key(s) {loc[-1]}", where=where,
                           hint="a topic takes partitions, replication_factor, configs, e.g. "
                                "{partitions: 2, replication_factor: 3, configs: {min.insync.replicas: 2}}")
    if kind == "missing":
        parent = ".".join(str(x) for x in loc[:-1]) or "project.yml"
        if loc[:1] == ("vars",):
            return RunnerError(f"{subject} needs a type and a value, e.g. {{type: double, value: 0.9}}", where=where)
        return RunnerError(f"missing '{loc[-1]}' in {parent}", where=where,
                           hint=f"add '{loc[-1]}:' to {parent} (see the shipped project.yml)")
    if kind == "literal_error" and loc[:1] == ("vars",):
        return RunnerError(f"{subject} has unknown type {err['input']!r}", where=where,
                           hint=f"use one of {', '.join(VAR_TYPES)}")
    return RunnerError(f"{subject}: {err['msg'].lower()}, got {err['input']!r}", where=where)


def load_project(root: str | Path = ".", *, target: str | None = None, master: str | None = None) -> Project:
    root = Path(root).resolve()
    file = root / PROJECT_FILE
    if not file.exists():
        raise RunnerError(f"no {PROJECT_FILE} in {root}",
                          hint="run the runner from the project folder or pass --project DIR")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise RunnerError(f"not valid YAML: {getattr(e, 'problem', e)}", where=where) from None
    if not isinstance(raw, dict):
        raise RunnerError("project.yml must be a mapping of sections (vars, topics, sources, targets, ...)",
                          where=str(file))
    try:
        decl = ProjectFile.model_validate(raw)
    except ValidationError as e:
        raise _problem(e, raw, file) from None

    for name, spec in (decl.vars or {}).items():   # each value as project.yml sets it, against its own rules
        try:
            vartypes.checked(name, spec.type, spec.rules, spec.value)
        except (TypeError, ValueError) as e:
            raise RunnerError(str(e), where=_yaml_line(file, "vars", name)) from None

    targets = decl.targets or {}
    tname = target or decl.default_target or "local"
    if tname not in targets:
        raise RunnerError(f"unknown target '{tname}'", where=_yaml_line(file, "targets"),
                          hint=f"targets defined: {', '.join(targets) or 'none'}")
    t = targets[tname]
    paths = decl.paths or {}
    return Project(
        root=root,
        name=str(decl.name or root.name),
        vars={name: VarSpec(name, spec.type, spec.value, spec.rules) for name, spec in (decl.vars or {}).items()},
        topics={name: (spec or TopicDecl()).spec() for name, spec in (decl.topics or {}).items()},
        sources={name: KafkaSource(name=name, topic=s.topic, options=dict(s.options), schema=dict(s.schema_))
                 for name, s in ((decl.sources.kafka if decl.sources else None) or {}).items()},
        model_path=root / decl.model,
        sql_dir=root / str(paths.get("sql", "sql")),
        target_dir=root / str(paths.get("target", "target")),
        runtime_dir=root / str(paths.get("runtime", ".runtime")),
        target=Target(name=tname, master=master or t.master, output_root=t.output_root,
                      checkpoint_root=t.checkpoint_root, kafka=dict(t.kafka), spark_conf=dict(t.spark_conf or {}),
                      kafka_wait_s=t.kafka_wait_s, metrics_port=t.metrics_port, metrics_host=t.metrics_host),
        targets=tuple(targets),
    )
