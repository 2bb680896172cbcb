"""`runner docs`: the project as a static site under target/docs/, as `dbt docs` shows a dbt project.

One index.html plus assets/, opened from disk (no server, no network): the DAG of sources, models,
sinks and the streaming queries the sinks run in; each model's source SQL, compiled SQL, columns
with their types and the source columns each comes from; the vars; each query's checkpoint
verdict as `runner plan` says it; the model card.

Where each fact comes from (this module only gathers and renders them):
- models, SQL, sinks: the compiled manifest (runner/compile/compiler.py);
- column names and lineage: runner/compile/lineage.py (what `runner lineage` prints);
- column types: Spark's analysis of each model over empty typed sources (runner/stream/apply.py
  `analyse`), or none with `use_spark=False`;
- verdicts: `plan(project, manifest)` (runner/stream/apply.py), read through `.name`, `.group`
  and `.verdict` only, since that module is being reshaped;
- vars: the manifest's, as compile resolved them (what the SQL sees);
- the model card: udfs/card.py `read_card`, the PR curve PNG `runner train` drew next to it.

The layout of the DAG is dagre's (vendored, see docs_templates/README.md), run in the browser.
"""
from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jinja2
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import SqlJinjaLexer, SqlLexer
from sqlglot.errors import SqlglotError

from runner.compile.compiler import compile_project
from runner.compile.lineage import Lineage, SourceColumn
from runner.compile.manifest import Manifest, source_view
from runner.compile.project import Project
from runner.errors import RunnerError
from runner.files import replace_folder

TEMPLATES = Path(__file__).with_name("docs_templates")
ASSETS = "assets"
DOCS_DIR = "docs"                 # under the project's target/ folder
PR_CURVE_ASSET = "pr_curve.png"   # the card's PNG, copied so the site does not point into models/
MARKER = ".runner-docs"           # in every site written, so a rerun knows the folder is its own to replace
_SQL_STYLE = "friendly"


@dataclass
class ColumnDoc:
    name: str
    type: str | None                 # Spark's type; None without Spark
    nullable: bool | None
    lineage: list[SourceColumn]      # source columns, as `runner lineage` finds them
    lineage_note: str | None = None  # why there is no lineage, when there is none

    @property
    def lineage_groups(self) -> list[tuple[str, list[SourceColumn]]]:
        """Source columns grouped by the column they are read from (the 30 JSON fields of `value`
        read as one line, not 30)."""
        groups: dict[str, list[SourceColumn]] = {}
        for c in self.lineage:
            groups.setdefault(f"{c.source}.{c.column}", []).append(c)
        return list(groups.items())


@dataclass
class SinkDoc:
    node: str                        # DAG node id
    model: str | None                # the model it writes
    label: str                       # 'kafka: fraud_alerts'
    sink: dict                       # as the model's config declares it; {} for a query the runner adds
    query: str | None = None         # the sink's query name, e.g. fraud_alerts__kafka
    group: str | None = None         # the streaming query it runs in, e.g. kpi_per_minute__sinks
    verdict: str | None = None       # NEW / RESUME / ... as `runner plan` says it
    reasons: list[str] = field(default_factory=list)

    @property
    def declared(self) -> bool:
        return bool(self.sink)

    @property
    def verdict_class(self) -> str:
        """A CSS class per verdict: 'RESUME (compatible change)' -> 'resume-compatible-change'."""
        return "-".join("".join(c if c.isalnum() else " " for c in (self.verdict or "unknown").lower()).split())


@dataclass
class ModelDoc:
    name: str
    path: str
    source_sql: str
    source_html: str
    compiled_html: str
    refs: list[str]
    sources: list[str]
    used_by: list[str]
    output_mode: str
    trigger: str | None
    watermark: dict | None
    fingerprint: str
    sinks: list[SinkDoc]
    columns: list[ColumnDoc]

    @property
    def is_view(self) -> bool:
        return not any(s.declared for s in self.sinks)


@dataclass
class VarDoc:
    name: str
    type: str
    value: str                 # the value the SQL sees
    literal: str               # as rendered into SQL
    declared: str              # project.yml's value
    overridden: bool


@dataclass
class DocsResult:
    index: Path
    models: int
    columns: int
    queries: int
    with_spark: bool
    card: bool
    seconds: float


def build(project: Project, var_overrides: dict[str, str] | None = None, *, out_dir: str | Path | None = None,
          use_spark: bool = True, spark=None, on_step: Callable[[str], None] | None = None) -> DocsResult:
    """Write the site and return where it is. `spark`: a session to analyse with (else one is
    started, and stopped again, when `use_spark`)."""
    started = time.monotonic()
    step = on_step or (lambda _msg: None)
    out = Path(out_dir) if out_dir else project.target_dir / DOCS_DIR
    _check_replaceable(out)   # before any work: the site replaces that folder whole

    step("compiling the models")
    manifest = compile_project(project, var_overrides, write=False)
    card, pr_curve, card_error = _card(project)
    if use_spark and card_error:   # Spark's analysis registers fraud_prob, which needs the model: say so first
        raise RunnerError(f"Spark can not analyse the models without the trained model: {card_error.message}",
                          hint="run `runner train` first, or `runner docs --no-spark` (column types left unknown)")
    schemas = _spark_schemas(project, manifest, spark, step) if use_spark else None
    step("planning the queries against their checkpoints")
    plans = _plans(project, manifest, var_overrides)
    step("tracing column lineage")
    sinks, other_queries = _sinks(manifest, plans)
    models = _models(project, manifest, schemas, sinks)
    vars_ = _vars(project, manifest, var_overrides)

    step(f"writing {out}")
    page = _environment().get_template("index.html.j2").render(
        project=project.name, generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        with_spark=schemas is not None, models=models, vars=vars_, card=card,
        card_note=str(card_error) if card_error else None,
        pr_curve=PR_CURVE_ASSET if pr_curve else None,
        threshold=_threshold(vars_), queries=[s for m in models for s in m.sinks] + other_queries,
        dag=_dag(project, manifest, models),
        sources=_sources(project, manifest))
    _write_site(out, page, pr_curve)
    return DocsResult(out / "index.html", len(models), sum(len(m.columns) for m in models),
                      len(plans), schemas is not None, card is not None,
                      time.monotonic() - started)


# --------------------------------------------------------------------------- facts

def _spark_schemas(project: Project, manifest: Manifest, spark, step) -> dict:
    from runner.stream import apply as runtime  # lazy: Spark only when asked for

    own = spark is None
    if own:
        from runner.stream.session import session_for
        step("starting Spark")
        spark = session_for(project, app_name="fraud-detector-docs")
    try:
        step("analysing every model with Spark (no data read)")
        return runtime.analyse(spark, project, manifest)
    finally:
        if own:
            spark.stop()


def _plans(project: Project, manifest: Manifest, var_overrides: dict[str, str] | None) -> list:
    from runner.stream import apply as runtime  # lazy: being rewritten; only .name/.group/.verdict are used

    return runtime.plan(project, manifest, var_overrides) if var_overrides else runtime.plan(project, manifest)


def _natural(col: SourceColumn) -> tuple:
    # V2 before V10, as `runner lineage` sorts them
    field_ = col.field or ""
    digits = "".join(c for c in field_ if c.isdigit())
    return (col.source, col.column, bool(field_), field_.rstrip("0123456789"), int(digits) if digits else -1)


def _columns(lineage: Lineage, model: str, schema) -> list[ColumnDoc]:
    known = lineage.columns.get(model, {})
    if schema is not None:
        named = [(f.name, f.dataType.simpleString(), f.nullable) for f in schema.fields]
    else:
        named = [(name, None, None) for name in known.values()]
    out = []
    for name, type_, nullable in named:
        if name.lower() not in known:
            out.append(ColumnDoc(name, type_, nullable, [], "not in the SELECT list lineage reads"))
            continue
        try:
            cols = sorted(lineage.upstream(model, known[name.lower()]), key=_natural)
            note = None if cols else "no source column (a literal or a computed value)"
        except (SqlglotError, RunnerError) as e:
            cols, note = [], f"lineage unknown: {str(e).splitlines()[0]}"
        out.append(ColumnDoc(name, type_, nullable, cols, note))
    return out


def _sink_id(sinks: list[dict], i: int) -> str:
    # how a sink's query is named, <model>__<sink id>: its kind, numbered when a model has several of a kind
    kind = sinks[i]["kind"]
    same = [j for j, other in enumerate(sinks) if other["kind"] == kind]
    return kind if len(same) == 1 else f"{kind}_{same.index(i) + 1}"


def _attach(doc: SinkDoc, p) -> SinkDoc:
    doc.query, doc.group, doc.verdict, doc.reasons = p.name, p.group, p.verdict.kind, list(p.verdict.reasons)
    return doc


def _sinks(manifest: Manifest, plans: list) -> tuple[dict[str, list[SinkDoc]], list[SinkDoc]]:
    """Each model's sinks with the plan of its query; then the plans no declared sink names (queries
    the runner adds, such as a route to an internal topic), under the model their name starts with."""
    by_name = {p.name: p for p in plans}
    out: dict[str, list[SinkDoc]] = {m.name: [] for m in manifest.models}
    for m in manifest.models:
        for i, sink in enumerate(m.config.sinks):
            detail = {"kafka": "topic", "parquet": "path", "memory": "name"}.get(sink["kind"])
            label = f"{sink['kind']}: {sink[detail]}" if detail else sink["kind"]
            doc = SinkDoc(f"sink:{m.name}:{i}", m.name, label, sink)
            p = by_name.pop(f"{m.name}__{_sink_id(m.config.sinks, i)}", None)
            out[m.name].append(_attach(doc, p) if p else doc)
    orphans = []
    for p in by_name.values():
        owners = [m.name for m in manifest.models if p.name.startswith(f"{m.name}__")]
        owner = max(owners, key=len) if owners else None
        doc = _attach(SinkDoc(f"query:{p.name}", owner, p.name, {}), p)
        (out[owner] if owner else orphans).append(doc)
    return out, orphans


def _models(project: Project, manifest: Manifest, schemas: dict | None,
            sinks: dict[str, list[SinkDoc]]) -> list[ModelDoc]:
    lineage = Lineage(project, manifest)
    formatter = HtmlFormatter(cssclass="sql")
    used_by = {m.name: [d.name for d in manifest.models if m.name in d.refs] for m in manifest.models}
    docs = []
    for m in manifest.models:
        source_sql = (project.root / m.path).read_text()
        docs.append(ModelDoc(
            name=m.name, path=m.path, source_sql=source_sql,
            source_html=highlight(source_sql, SqlJinjaLexer(), formatter),
            compiled_html=highlight(m.sql, SqlLexer(), formatter),
            refs=list(m.refs), sources=[f"{k}.{n}" for k, n in m.sources], used_by=used_by[m.name],
            output_mode=m.config.output_mode, trigger=m.config.trigger, watermark=m.config.watermark,
            fingerprint=m.fingerprint, sinks=sinks[m.name],
            columns=_columns(lineage, m.name, (schemas or {}).get(m.name) if schemas is not None else None)))
    return docs


def _vars(project: Project, manifest: Manifest, var_overrides: dict[str, str] | None) -> list[VarDoc]:
    resolved = manifest.vars   # name -> {type, value, literal}, as the SQL saw them
    return [VarDoc(name, spec.type, resolved[name]["value"], resolved[name]["literal"], str(spec.value),
                   name in (var_overrides or {})) for name, spec in project.vars.items()]


def _sources(project: Project, manifest: Manifest) -> list[dict]:
    out = []
    for kind, name in sorted({tuple(s) for m in manifest.models for s in m.sources}):
        src = project.sources.get(name)
        out.append({"kind": kind, "name": name, "view": source_view(kind, name),
                    "topic": src.topic if src else "?", "schema": dict(src.schema) if src else {},
                    "read_by": [m.name for m in manifest.models if (kind, name) in {tuple(x) for x in m.sources}]})
    return out


def _threshold(vars_: list[VarDoc]) -> float | None:
    for v in vars_:
        if v.name == "threshold":
            return float(v.value)
    return None


def _card(project: Project) -> tuple[dict | None, Path | None, RunnerError | None]:
    """The model card, its PR curve PNG when there is one, or why there is no card."""
    from udfs.card import read_card

    try:
        card = read_card(project.model_path)
    except RunnerError as e:   # the site still documents the SQL; the card section says what to do
        return None, None, e
    png = project.model_path / str(card.get("pr_curve") or "")
    return card, (png if card.get("pr_curve") and png.is_file() else None), None


def _dag(project: Project, manifest: Manifest, models: list[ModelDoc]) -> dict:
    """Nodes, edges and query clusters for dagre: sources -> models -> sinks, sinks inside their query."""
    nodes, edges, clusters = [], [], {}
    for kind, name in sorted({tuple(s) for m in manifest.models for s in m.sources}):
        topic = project.sources[name].topic if name in project.sources else name
        nodes.append({"id": f"source:{kind}.{name}", "label": f"{kind}.{name}", "sub": f"topic {topic}",
                      "kind": "source", "href": f"#source-{kind}.{name}"})
    for m in models:
        nodes.append({"id": f"model:{m.name}", "label": m.name, "sub": "view" if m.is_view else m.output_mode,
                      "kind": "view" if m.is_view else "model", "href": f"#model-{m.name}", "model": m.name})
        edges += [{"from": f"source:{s}", "to": f"model:{m.name}"} for s in m.sources]
        edges += [{"from": f"model:{r}", "to": f"model:{m.name}"} for r in m.refs]
        for s in m.sinks:
            sub = (s.verdict or "") if s.declared else f"added by the runner · {s.verdict}"
            node = {"id": s.node, "label": s.label, "sub": sub, "kind": "sink" if s.declared else "sink internal",
                    "verdict": s.verdict_class, "href": f"#query-{s.query or s.node}"}
            if s.group:
                clusters[s.group] = {"id": f"query:{s.group}", "label": f"query {s.group}"}
                node["parent"] = f"query:{s.group}"
            nodes.append(node)
            edges.append({"from": f"model:{m.name}", "to": s.node})
    return {"nodes": nodes, "edges": edges, "clusters": list(clusters.values())}


# --------------------------------------------------------------------------- writing

def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda x, digits=4: "n/a" if x is None else f"{x:.{digits}f}"
    return env


def _check_replaceable(out: Path) -> None:
    """The site replaces `out` whole: only a folder `runner docs` wrote (or an empty one) may go."""
    if out.exists() and not out.is_dir():
        raise RunnerError(f"{out} is a file, not a folder for the site", hint="give --out a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise RunnerError(f"{out} holds files `runner docs` did not write; it would replace the folder whole",
                          hint="give --out a new or empty folder (default: target/docs)")


def _write_site(out: Path, page: str, pr_curve: Path | None) -> None:
    """Build the site beside `out` and swap it in, so a failure leaves the previous site whole."""
    _check_replaceable(out)
    with replace_folder(out) as tmp:
        shutil.copytree(TEMPLATES / ASSETS, tmp / ASSETS)
        (tmp / ASSETS / "pygments.css").write_text(HtmlFormatter(style=_SQL_STYLE).get_style_defs(".sql"))
        if pr_curve:
            shutil.copyfile(pr_curve, tmp / ASSETS / PR_CURVE_ASSET)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        (tmp / MARKER).write_text("written by `runner docs`; the next run replaces this folder whole\n")
