"""What `compile` hands to the run-time: the manifest and its parts, and the rules for a model's config.

Pure data: nothing here renders, parses SQL or touches Spark. The runtime reads
models in `Manifest.models` order (dependencies first).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import RunnerError

# Sink kinds as data: required keys, optional keys. Every sink may carry 'trigger'.
SINK_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "kafka": ({"topic"}, {"key"}),
    "parquet": ({"path"}, set()),
    "console": (set(), set()),
    "memory": ({"name"}, set()),
}
CONFIG_KEYS = {"sinks", "output_mode", "trigger", "watermark", "topic"}
OUTPUT_MODES = ("append", "update", "complete")
DURATION = re.compile(r"^\d+(\.\d+)? (second|minute|hour|day)s?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SINK_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")   # no quotes, spaces, ';' or control characters


@dataclass(frozen=True)
class ModelConfig:
    sinks: list[dict] = field(default_factory=list)
    output_mode: str = "append"
    trigger: str | None = None
    watermark: dict | None = None  # {'column': str, 'delay': '2 minutes'}
    topic: str | None = None       # the Kafka topic the runner writes this model's rows to, for the
                                   # queries that read it (a project.yml topic)


@dataclass(frozen=True)
class CompiledModel:
    name: str
    path: str                       # relative to the project root
    sql: str                        # rendered SELECT, no trailing semicolon
    refs: list[str]
    sources: list[tuple[str, str]]  # e.g. [('kafka', 'transactions')]
    config: ModelConfig
    fingerprint: str                # sha256 of the normalized parsed SQL

    @property
    def is_view(self) -> bool:
        return not self.config.sinks


@dataclass(frozen=True)
class Manifest:
    project: str
    models: list[CompiledModel]     # topological order, dependencies first
    routes: dict | None = None      # the route query (runner/compile/routes.py RoutePlan), as data

    def model(self, name: str) -> CompiledModel:
        for m in self.models:
            if m.name == name:
                return m
        raise RunnerError(f"no model named '{name}'", hint=f"models: {', '.join(m.name for m in self.models)}")

    def to_dict(self) -> dict:
        return {"project": self.project, "models": [asdict(m) for m in self.models], "routes": self.routes}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        raw = json.loads(text)
        models = [
            CompiledModel(
                name=m["name"], path=m["path"], sql=m["sql"], refs=list(m["refs"]),
                sources=[tuple(s) for s in m["sources"]], config=ModelConfig(**m["config"]),
                fingerprint=m["fingerprint"])
            for m in raw["models"]
        ]
        return cls(project=raw["project"], models=models, routes=raw.get("routes"))


def load_manifest(path: str | Path) -> Manifest:
    p = Path(path)
    if not p.exists():
        raise RunnerError(f"no manifest at {p}", hint="run `runner compile` first")
    return Manifest.from_json(p.read_text())


def _duration(value: Any, what: str, where: str) -> str:
    text = str(value).strip()
    if not DURATION.match(text):
        raise RunnerError(f"{what} must be a duration like '1 second' or '2 minutes', got {value!r}", where=where)
    return text


REALTIME = "realtime"   # Spark's Real-time Mode: records flow through, batches only checkpoint
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def duration_seconds(text: str) -> float:
    number, unit = text.split()
    return float(number) * _UNIT_SECONDS[unit.rstrip("s")]


def _trigger(value: Any, what: str, where: str) -> str:
    if str(value).strip().lower() == REALTIME:
        return REALTIME
    return _duration(value, what, where)


def _topic(value: Any, where: str) -> str:
    if not _TOPIC.match(str(value)):
        raise RunnerError(f"config topic {value!r} is not a valid Kafka topic name", where=where)
    return str(value)


def _sink(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict) or "kind" not in raw:
        raise RunnerError(f"each sink is a dict with a 'kind', got {raw!r}", where=where,
                          hint=f"kinds: {', '.join(SINK_KEYS)}")
    kind = raw["kind"]
    if kind not in SINK_KEYS:
        raise RunnerError(f"unknown sink kind '{kind}'", where=where, hint=f"use one of {', '.join(SINK_KEYS)}")
    required, optional = SINK_KEYS[kind]
    allowed = {"kind", "trigger"} | required | optional
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RunnerError(f"{kind} sink has unknown key(s) {', '.join(unknown)}", where=where,
                          hint=f"a {kind} sink takes {', '.join(sorted(allowed))}")
    missing = sorted(required - set(raw))
    if missing:
        raise RunnerError(f"{kind} sink needs {', '.join(missing)}", where=where)
    sink = {k: str(v) for k, v in raw.items()}
    if kind == "kafka" and not _TOPIC.match(sink["topic"]):
        raise RunnerError(f"kafka sink topic {sink['topic']!r} is not a valid topic name", where=where)
    if "key" in sink and not _NAME.match(sink["key"]):
        raise RunnerError(f"kafka sink key must be a column name, got {sink['key']!r}", where=where)
    if kind == "memory" and not _NAME.match(sink["name"]):
        raise RunnerError(f"memory sink name must be an identifier, got {sink['name']!r}", where=where)
    if kind == "parquet":
        path = sink["path"]
        if (path.startswith("/") or "://" in path or ".." in Path(path).parts or not path.strip()
                or not _SINK_PATH.match(path)):
            raise RunnerError(f"parquet sink path {path!r} must be a relative folder under the target's output root "
                               "(letters, digits, '.', '_', '-', '/'; no '..')", where=where)
    if "trigger" in sink:
        sink["trigger"] = _trigger(sink["trigger"], "a sink trigger", where)
        if sink["trigger"] == REALTIME and kind != "kafka":
            raise RunnerError(f"trigger 'realtime' (Spark's Real-time Mode) is for Kafka sinks; a {kind} sink "
                              "runs in micro-batches", where=where)
    return sink


def parse_config(raw: dict[str, Any], where: str) -> ModelConfig:
    """Check what one `config(...)` call asked for; errors name the call's file:line."""
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise RunnerError(f"unknown config key(s) {', '.join(unknown)}", where=where,
                          hint=f"config takes {', '.join(sorted(CONFIG_KEYS))}")
    sinks_raw = raw.get("sinks") or []
    if not isinstance(sinks_raw, (list, tuple)):
        raise RunnerError("config sinks must be a list of dicts", where=where)
    mode = raw.get("output_mode", "append")
    if mode not in OUTPUT_MODES:
        raise RunnerError(f"unknown output_mode {mode!r}", where=where, hint=f"use one of {', '.join(OUTPUT_MODES)}")
    trigger = raw.get("trigger")
    wm = raw.get("watermark")
    if wm is not None:
        if not isinstance(wm, dict) or set(wm) != {"column", "delay"}:
            raise RunnerError("watermark must be {'column': ..., 'delay': ...}", where=where)
        if not _NAME.match(str(wm["column"])):
            raise RunnerError(f"watermark column must be a column name, got {wm['column']!r}", where=where)
        wm = {"column": str(wm["column"]), "delay": _duration(wm["delay"], "watermark delay", where)}
    return ModelConfig(
        sinks=[_sink(s, where) for s in sinks_raw],
        output_mode=mode,
        trigger=None if trigger is None else _trigger(trigger, "trigger", where),
        watermark=wm,
        topic=None if raw.get("topic") is None else _topic(raw["topic"], where),
    )
