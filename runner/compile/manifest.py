"""What `compile` hands to the run-time: the manifest and its parts, and the rules for a model's config.

Pure data: nothing here renders, parses SQL or touches Spark. The runtime reads
models in `Manifest.models` order (dependencies first).

The manifest is the hand-off, as in dbt: `runner compile` writes target/manifest.json with all
that run time needs (each model's SQL, config and fingerprint, the route query, the vars as the
SQL saw them, the source schemas, the model's features) and a hash of what it was compiled from
(`input_hash`). Run-time verbs load it (`load_current`) and recompile only when that hash no
longer matches, so the Jinja layer (runner/compile/render.py) is never needed at run time.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from runner.compile.project import FIELD_NAME, TOPIC_NAME
from runner.compile.vartypes import DURATION, VAR_FROM_CLI, shown
from runner.errors import RunnerError

OUTPUT_MODES = ("append", "update", "complete")
_NAME = FIELD_NAME    # a column name: the rule project.yml's schema fields follow
_TOPIC = TOPIC_NAME   # Kafka's rule for topic names, one place
_SINK_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")   # no quotes, spaces, ';' or control characters


@dataclass(frozen=True)
class ModelConfig:
    sinks: list[dict] = field(default_factory=list)
    output_mode: str = "append"
    trigger: str | None = None
    watermark: dict | None = None  # {'column': str, 'delay': '2 minutes'}
    topic: str | None = None       # the Kafka topic the runner writes this model's rows to, for the
                                   # queries that read it (a project.yml topic)
    late_rows: str | None = None   # a stateful model: the Parquet folder (under the output root) that
                                   # keeps the input rows its watermark left out (runner/stream/late_rows.py)


@dataclass(frozen=True)
class CompiledModel:
    name: str
    path: str                       # relative to the project root
    sql: str                        # rendered SELECT, no trailing semicolon
    refs: list[str]
    sources: list[tuple[str, str]]  # e.g. [('kafka', 'transactions')]
    config: ModelConfig
    fingerprint: str                # sha256 of the normalized parsed SQL
    vars: list[str] = field(default_factory=list)   # the vars its SQL and config read, in order

    @property
    def is_view(self) -> bool:
        return not self.config.sinks


@dataclass(frozen=True)
class Manifest:
    project: str
    models: list[CompiledModel]     # topological order, dependencies first
    routes: dict | None = None      # the route query (runner/compile/routes.py RoutePlan), as data
    # The vars as the SQL saw them (project.yml's values with the --var overrides applied):
    # name -> {"type", "value": the value as text, "literal": what {{ var(name) }} printed}.
    vars: dict[str, dict] = field(default_factory=dict)
    # Each source in project.yml: name -> {"kind", "topic", "schema": {field: Spark SQL type}}.
    sources: dict[str, dict] = field(default_factory=dict)
    # The features fraud_prob takes, in order, and where they were read from (the model card, or
    # project.yml's schema before the first `runner train`; runner/compile/features.py).
    features: dict = field(default_factory=dict)   # {"names": [...], "origin": "..."}
    # What it was compiled from: {"hash": input_hash(...), "compiler": compiler_hash(),
    # "var_overrides": {...}, "select": MODEL or None}.
    inputs: dict = field(default_factory=dict)

    def var_values(self) -> dict[str, str]:
        """{name: value as text}: what a checkpoint's fingerprint records of the vars."""
        return {name: v["value"] for name, v in self.vars.items()}

    def vars_reaching(self, name: str) -> str:
        """The vars whose values reach model `name`, each with its value and where it was set, in
        one line for an error about that model: "window = '0 seconds' (--var on the command line),
        watermark = '2 minutes' (project.yml, via kpi_events)"; "" when none does."""
        overrides = self.inputs.get("var_overrides") or {}
        ancestors, stack = [], list(self.model(name).refs)
        while stack:
            upstream = self.model(stack.pop(0))
            if upstream.name not in ancestors:
                ancestors.append(upstream.name)
                stack.extend(upstream.refs)
        reached: dict[str, str] = {v: "" for v in self.model(name).vars}
        for upstream in ancestors:
            for v in self.model(upstream).vars:
                reached.setdefault(v, f", via {upstream}")
        return ", ".join(
            f"{v} = {shown(self.vars[v]['type'], self.vars[v]['value'])} "
            f"({VAR_FROM_CLI if v in overrides else 'project.yml'}{via})"
            for v, via in reached.items() if v in self.vars)

    def model(self, name: str) -> CompiledModel:
        for m in self.models:
            if m.name == name:
                return m
        raise RunnerError(f"no model named '{name}'", hint=f"models: {', '.join(m.name for m in self.models)}")

    def to_dict(self) -> dict:
        return {"project": self.project, "models": [asdict(m) for m in self.models], "routes": self.routes,
                "vars": self.vars, "sources": self.sources, "features": self.features, "inputs": self.inputs}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        raw = json.loads(text)
        models = [
            CompiledModel(
                name=m["name"], path=m["path"], sql=m["sql"], refs=list(m["refs"]),
                sources=[tuple(s) for s in m["sources"]], config=ModelConfig(**m["config"]),
                fingerprint=m["fingerprint"], vars=list(m.get("vars", [])))
            for m in raw["models"]
        ]
        return cls(project=raw["project"], models=models, routes=raw.get("routes"), vars=raw.get("vars") or {},
                   sources=raw.get("sources") or {}, features=raw.get("features") or {},
                   inputs=raw.get("inputs") or {})


MANIFEST_FILE = "manifest.json"
STALE = "project changed since the last compile: recompiling"


def source_view(kind: str, name: str) -> str:
    """The temp view name a source is read through: `source('kafka', 'x')` renders to it, the
    runtime registers the stream under it, and SQL tests stand their inputs in for it."""
    return f"src__{kind}__{name}"


def load_manifest(path: str | Path) -> Manifest:
    p = Path(path)
    if not p.exists():
        raise RunnerError(f"no manifest at {p}", hint="run `runner compile` first")
    return Manifest.from_json(p.read_text())


# SQL unit tests live next to the models they test (sql/staging/stg_parsed.tests.yml); `runner test`
# reads them, compile does not, so editing a test leaves the manifest current.
UNIT_TESTS_SUFFIX = ".tests.yml"


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(UNIT_TESTS_SUFFIX))


def input_hash(project, var_overrides: dict[str, str] | None = None) -> str:
    """sha256 of what a compile reads: project.yml, every file under sql/ but the unit tests (names and
    bytes), the --var overrides and the model card it checks (absent counts too: training one changes it)."""
    from udfs.card import CARD_FILE

    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)

    add("project.yml", project.file.read_bytes())
    for f in _files_under(project.sql_dir):
        add("sql/" + f.relative_to(project.sql_dir).as_posix(), f.read_bytes())
    add("--var", json.dumps(sorted((var_overrides or {}).items())).encode())
    card = project.model_path / CARD_FILE
    add("model card", card.read_bytes() if card.is_file() else b"(none)")
    return h.hexdigest()


def compiler_hash() -> str:
    """sha256 of the compiler's own code (runner/compile/*.py): a manifest written by another
    version of the runner is compiled again, not trusted."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def load_current(project, var_overrides: dict[str, str] | None = None) -> tuple[Manifest | None, str]:
    """target/manifest.json when it was compiled from the project as it is now, else None and,
    in one line, why it has to be compiled again ("" when there is none yet: compiling first is
    then what anyone expects, as `dbt run` does, and not worth a line)."""
    path = Path(project.target_dir) / MANIFEST_FILE
    if not path.is_file():
        return None, ""
    try:
        manifest = Manifest.from_json(path.read_text())
    except (ValueError, KeyError, TypeError):
        return None, f"{path} is not a manifest this runner reads: recompiling"
    inputs = manifest.inputs
    if inputs.get("select") is not None:
        return None, f"the last compile was of --select {inputs['select']} only: recompiling"
    if inputs.get("compiler") != compiler_hash():
        return None, "the runner's compiler changed since the last compile: recompiling"
    if inputs.get("hash") != input_hash(project, var_overrides):
        return None, STALE
    return manifest, ""


REALTIME = "realtime"   # Spark's Real-time Mode: records flow through, batches only checkpoint
# --------------------------------------------------------------------------- a model's config
# What `{{ config(...) }}` may say, declared as pydantic models: each key, its type, its default,
# the sink kinds and the keys each takes. `parse_config` turns the first thing wrong into one
# RunnerError at the config call's file:line, in the words below.

def _duration_text(what: str):
    def check(value: Any) -> str:
        text = str(value).strip()
        if not DURATION.match(text):
            raise ValueError(f"{what} must be a duration like '1 second' or '2 minutes', got {value!r}")
        return text
    return check


def _trigger_text(what: str):
    duration = _duration_text(what)

    def check(value: Any) -> str:
        return REALTIME if str(value).strip().lower() == REALTIME else duration(value)
    return check


def _matching(pattern: re.Pattern, message: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(message.format(value=value))
        return value
    return check


def _sink_path(path: str, what: str = "parquet sink path") -> str:
    if (path.startswith("/") or "://" in path or ".." in Path(path).parts or not path.strip()
            or not _SINK_PATH.match(path)):
        raise ValueError(f"{what} {path!r} must be a relative folder under the target's output root "
                         "(letters, digits, '.', '_', '-', '/'; no '..')")
    return path


_SinkTrigger = Annotated[Any, AfterValidator(_trigger_text("a sink trigger"))]


class _Declared(BaseModel):
    # unknown keys are mistakes; numbers given for names are read as their text, as before
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class _SinkSpec(_Declared):
    trigger: Annotated[Any, AfterValidator(_trigger_text("a sink trigger"))] = None


class KafkaSinkSpec(_SinkSpec):
    kind: Literal["kafka"]
    topic: Annotated[str, AfterValidator(_matching(_TOPIC, "kafka sink topic {value!r} is not a valid topic name"))]
    key: Annotated[str, AfterValidator(_matching(_NAME, "kafka sink key must be a column name, got {value!r}"))] \
        | None = None


class _MicroBatchSinkSpec(_SinkSpec):
    @model_validator(mode="after")
    def _not_realtime(self):
        if self.trigger == REALTIME:
            raise ValueError(f"trigger 'realtime' (Spark's Real-time Mode) is for Kafka sinks; a {self.kind} sink "
                             "runs in micro-batches")
        return self


class ParquetSinkSpec(_MicroBatchSinkSpec):
    kind: Literal["parquet"]
    path: Annotated[str, AfterValidator(_sink_path)]


class ConsoleSinkSpec(_MicroBatchSinkSpec):
    kind: Literal["console"]


class MemorySinkSpec(_MicroBatchSinkSpec):
    kind: Literal["memory"]
    name: Annotated[str, AfterValidator(_matching(_NAME, "memory sink name must be an identifier, got {value!r}"))]


SINK_SPECS: dict[str, type[_SinkSpec]] = {"kafka": KafkaSinkSpec, "parquet": ParquetSinkSpec,
                                          "console": ConsoleSinkSpec, "memory": MemorySinkSpec}


class WatermarkSpec(_Declared):
    column: Annotated[str, AfterValidator(_matching(_NAME, "watermark column must be a column name, got {value!r}"))]
    delay: Annotated[Any, AfterValidator(_duration_text("watermark delay"))]


class ConfigSpec(_Declared):
    sinks: list[Any] | tuple[Any, ...] = ()   # each checked against its kind's model in _sink
    output_mode: Literal["append", "update", "complete"] = "append"
    trigger: Annotated[Any, AfterValidator(_trigger_text("trigger"))] = None
    watermark: WatermarkSpec | None = None
    topic: Annotated[str, AfterValidator(_matching(_TOPIC, "config topic {value!r} is not a valid Kafka topic name"))] \
        | None = None
    late_rows: Annotated[str, AfterValidator(lambda p: _sink_path(p, "late_rows"))] | None = None


def _first_problem(e: ValidationError, model: type[BaseModel], noun: str, raw: dict) -> tuple[str, str | None]:
    """One message (and hint) for the first thing wrong: unknown keys first, then missing ones,
    then the first value a rule refused, in that rule's words."""
    errors = e.errors(include_url=False)
    top = [err for err in errors if len(err["loc"]) == 1]
    unknown = sorted(str(err["loc"][0]) for err in top if err["type"] == "extra_forbidden")
    if unknown:
        return (f"unknown config key(s) {', '.join(unknown)}" if noun == "config"
                else f"{noun} has unknown key(s) {', '.join(unknown)}"), \
            f"{'config' if noun == 'config' else 'a ' + noun} takes {', '.join(sorted(model.model_fields))}"
    missing = sorted(str(err["loc"][0]) for err in top if err["type"] == "missing")
    if missing:
        return f"{noun} needs {', '.join(missing)}", None
    err = errors[0]
    field = err["loc"][0] if err["loc"] else None
    if field == "output_mode":
        return f"unknown output_mode {raw.get('output_mode')!r}", f"use one of {', '.join(OUTPUT_MODES)}"
    if field == "sinks":
        return "config sinks must be a list of dicts", None
    if field == "watermark" and (len(err["loc"]) == 1 or err["type"] in ("extra_forbidden", "missing")):
        return "watermark must be {'column': ..., 'delay': ...}", None
    if err["type"] == "value_error":
        return str(err["ctx"]["error"]), None
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}", None


def _sink(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict) or "kind" not in raw:
        raise RunnerError(f"each sink is a dict with a 'kind', got {raw!r}", where=where,
                          hint=f"kinds: {', '.join(SINK_SPECS)}")
    kind = raw["kind"]
    model = SINK_SPECS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise RunnerError(f"unknown sink kind '{kind}'", where=where, hint=f"use one of {', '.join(SINK_SPECS)}")
    try:
        checked = model.model_validate(raw)
    except ValidationError as e:
        message, hint = _first_problem(e, model, f"{kind} sink", raw)
        raise RunnerError(message, where=where, hint=hint) from None
    # the sink as written (its keys in the user's order, values as text), trigger normalized
    sink = {k: str(v) for k, v in raw.items()}
    if "trigger" in sink:
        sink["trigger"] = checked.trigger
    return sink


def parse_config(raw: dict[str, Any], where: str) -> ModelConfig:
    """Check what one `config(...)` call asked for; errors name the call's file:line."""
    try:
        checked = ConfigSpec.model_validate({k: v for k, v in raw.items() if not (k == "sinks" and v is None)})
    except ValidationError as e:
        message, hint = _first_problem(e, ConfigSpec, "config", raw)
        raise RunnerError(message, where=where, hint=hint) from None
    wm = checked.watermark
    return ModelConfig(
        sinks=[_sink(s, where) for s in checked.sinks],
        output_mode=checked.output_mode,
        trigger=checked.trigger,
        watermark=None if wm is None else {"column": wm.column, "delay": wm.delay},
        topic=checked.topic,
        late_rows=checked.late_rows,
    )
