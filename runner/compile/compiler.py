"""`runner compile`: render every model, parse it, check it, order it, write the manifest.

Compile-time only: Jinja and sqlglot, never Spark. Everything is checked in
memory first; files are written only when the whole project compiled, the
compiled SQL folder swapped in and the manifest renamed into place, so an
error leaves the previous target/ as it was.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from runner.compile import manifest as handoff
from runner.compile import routes
from runner.compile.dialect import FraudSpark
from runner.compile.graph import find_cycle, topological_order
from runner.compile.graph import select as select_models
from runner.compile.manifest import CompiledModel, Manifest, ModelConfig  # noqa: F401  (re-exported contract)
from runner.compile.project import Project
from runner.compile.render import MACRO_DIR, RenderedModel, Renderer
from runner.errors import RunnerError
from runner.files import replace_folder, write_atomic

MANIFEST = handoff.MANIFEST_FILE
COMPILED = "compiled"


def model_files(project: Project) -> dict[str, Path]:
    """Model name (file stem) -> file, for every .sql under sql/ except sql/macros/."""
    sql_dir = project.sql_dir
    if not sql_dir.is_dir():
        raise RunnerError(f"no SQL folder at {sql_dir}", hint="paths.sql in project.yml names it")
    found: dict[str, Path] = {}
    for file in sorted(sql_dir.rglob("*.sql")):
        if file.relative_to(sql_dir).parts[0] == MACRO_DIR:
            continue
        if file.stem in found:
            raise RunnerError(f"two models named '{file.stem}': {found[file.stem].relative_to(project.root)} "
                              f"and {file.relative_to(project.root)}", hint="model names (file stems) must be unique")
        found[file.stem] = file
    return found


def parse_sql(sql: str) -> exp.Expression:
    """One SELECT statement in the runner's Spark dialect (raises sqlglot's errors)."""
    statements = [s for s in sqlglot.parse(sql, read=FraudSpark) if s is not None]
    if len(statements) != 1:
        raise ParseError(f"a model is exactly one SELECT statement, found {len(statements)} statements")
    if not isinstance(statements[0], exp.Query):
        raise ParseError(f"a model is a SELECT query, found {statements[0].key.upper()}")
    return statements[0]


def fingerprint(tree: exp.Expression) -> str:
    """sha256 of the parsed SQL printed canonically: formatting and comments do not change it."""
    canonical = tree.sql(dialect=FraudSpark, comments=False, normalize=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _source_line(source_text: str, rendered: str, rendered_line: int) -> int:
    """Best effort: the model-file line holding the text sqlglot stopped at (rendering shifts lines)."""
    lines = rendered.splitlines()
    if not 1 <= rendered_line <= len(lines):
        return rendered_line
    needle = lines[rendered_line - 1].strip()
    src = source_text.splitlines()
    hits = [i + 1 for i, line in enumerate(src) if needle and line.strip() == needle]
    if not hits:
        hits = [i + 1 for i, line in enumerate(src) if needle and needle in line]
    return min(hits, key=lambda n: abs(n - rendered_line)) if hits else rendered_line


def _parse_model(model: RenderedModel, project: Project) -> exp.Expression:
    try:
        return parse_sql(model.sql)
    except (ParseError, TokenError) as e:
        errors = getattr(e, "errors", None) or []
        first = errors[0] if errors else {}
        rline = first.get("line") or 1
        source_text = (project.root / model.path).read_text()
        line = _source_line(source_text, model.sql, rline)
        desc = (first.get("description") or str(e).splitlines()[0]).strip()
        near = (first.get("highlight") or "").strip()
        raise RunnerError(f"SQL does not parse: {desc}" + (f" near '{near}'" if near else ""),
                          where=f"{model.path}:{line}",
                          hint=f"see the rendered SQL at target/{COMPILED}/{model.name}.sql line {rline}") from None


def _check_cycle(rendered: dict[str, RenderedModel]) -> None:
    deps = {name: m.refs for name, m in rendered.items()}
    cycle = find_cycle(deps)
    if cycle:
        first = rendered[cycle[0]]
        line = first.ref_lines.get(cycle[1], 0)
        raise RunnerError(f"models form a cycle: {' -> '.join(cycle)}", where=f"{first.path}:{line}",
                          hint="a model can not depend on itself, directly or through other models")


def render_model(project: Project, name: str, var_overrides: dict[str, str] | None = None) -> RenderedModel:
    """One model rendered as `compile` renders it (for SQL tests that run a single model)."""
    files = model_files(project)
    if name not in files:
        raise RunnerError(f"no model named '{name}'", hint=f"models: {', '.join(sorted(files))}")
    return Renderer(project, var_overrides, model_names=set(files)).render(files[name])


def compile_project(project: Project, var_overrides: dict[str, str] | None = None,
                    select: str | None = None, write: bool = True) -> Manifest:
    inputs = {"hash": handoff.input_hash(project, var_overrides), "compiler": handoff.compiler_hash(),
              "var_overrides": dict(var_overrides or {}), "select": select}
    files = model_files(project)
    renderer = Renderer(project, var_overrides, model_names=set(files))
    rendered = {name: renderer.render(path) for name, path in files.items()}
    _check_cycle(rendered)
    deps = {name: m.refs for name, m in rendered.items()}
    chosen = select_models(deps, select)

    models: list[CompiledModel] = []
    for name in topological_order(deps):
        if name not in chosen:
            continue
        r = rendered[name]
        tree = _parse_model(r, project)
        models.append(CompiledModel(name=r.name, path=r.path, sql=r.sql, refs=list(r.refs),
                                    sources=list(r.sources), config=r.config, fingerprint=fingerprint(tree),
                                    vars=list(r.vars)))
    facts = dict(
        vars={name: {"type": project.vars[name].type, "value": str(v.raw), "literal": str(v)}
              for name, v in renderer.vars.items()},
        sources={name: {"kind": "kafka", "topic": s.topic, "schema": dict(s.schema)}
                 for name, s in project.sources.items()},
        features={"names": list(renderer.features.names), "origin": renderer.features.origin},
        inputs=inputs)
    manifest = Manifest(project=project.name, models=models, **facts)
    if select is None:   # the route query covers the whole project; a selection only checks models
        manifest = Manifest(project=project.name, models=models, routes=_route_plan(project, manifest), **facts)
    _check_late_rows(manifest)
    if write:
        write_target(project, manifest)
    return manifest


def current_manifest(project: Project, var_overrides: dict[str, str] | None = None, *, write: bool = True,
                     say: Callable[[str], None] | None = None) -> Manifest:
    """What run-time verbs work from: target/manifest.json when it was compiled from the project
    as it is now (same input hash), else the project compiled again, with `say` told why in one
    line (default: stderr). `write=False` (the read-only verbs) leaves target/ untouched."""
    manifest, why = handoff.load_current(project, var_overrides)
    if manifest is not None:
        return manifest
    if why:
        (say or (lambda line: print(line, file=sys.stderr, flush=True)))(why)
    return compile_project(project, var_overrides, write=write)


def _route_plan(project: Project, manifest: Manifest) -> dict | None:
    route_plan = routes.plan(manifest)
    if route_plan is None:
        return None
    for r in route_plan.routes:
        if r.topic not in project.topics:
            raise RunnerError(f"model '{r.model}' writes to the topic '{r.topic}', which project.yml does not declare",
                              where=manifest.model(r.model).path,
                              hint=f"add `{r.topic}: {{partitions: 1}}` under topics: in {project.file}")
    # as JSON types (lists, not tuples), so the manifest in memory equals the one read back
    return json.loads(json.dumps(route_plan.to_dict()))


def _check_late_rows(manifest: Manifest) -> None:
    """config(late_rows=...) keeps what a watermark leaves out: only a stateful model reading a model
    with a watermark has any."""
    by_name = {m.name: m for m in manifest.models}
    for m in manifest.models:
        if not m.config.late_rows or any(r not in by_name for r in m.refs):   # a --select may leave its refs out
            continue
        if not routes.is_stateful(m) or not any(by_name[r].config.watermark for r in m.refs):
            raise RunnerError(f"model '{m.name}' sets late_rows, but it is not a windowed aggregation over a model "
                              "with a watermark, so no row of it is ever late", where=m.path,
                              hint="set late_rows on the model that aggregates (e.g. kpi_per_minute), or remove it")


def write_target(project: Project, manifest: Manifest) -> Path:
    """target/compiled/<model>.sql and target/manifest.json, each swapped in whole."""
    target = project.target_dir
    with replace_folder(target / COMPILED) as staging:
        for m in manifest.models:
            (staging / f"{m.name}.sql").write_text(m.sql + "\n")
        if manifest.routes:   # the route query, as Spark runs it
            (staging / f"{manifest.routes['query']}.sql").write_text(manifest.routes["sql"] + "\n")
    return write_atomic(target / MANIFEST, manifest.to_json() + "\n")
