"""The Jinja layer: `ref`, `source`, `var`, `config` and the macros in sql/macros/.

Facts the SQL needs from elsewhere come from their one place: `source_schema(name)` is
project.yml's schema of a source (sql/macros/json.sql builds the from_json schema from it with
`schema_ddl`), `model_features` the model card's features in order (runner/compile/features.py).

Rendering turns a model file into plain Spark SQL and records what the file
asked for (refs, sources, vars, config). Values reach SQL only as typed
literals (runner/compile/vartypes.py), never as pasted text, so a var can not inject SQL.
Every user error names the model file and the template line.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2

from runner.compile.features import ModelFeatures, model_features
from runner.compile.manifest import ModelConfig, parse_config, source_view
from runner.compile.project import FIELD_NAME, FIELD_TYPE, Project
from runner.compile.vartypes import VAR_FROM_CLI, VAR_LITERALS, checked, sql_string  # noqa: F401  (VAR_LITERALS re-exported)
from runner.errors import RunnerError

MACRO_DIR = "macros"


class SqlVar(str):
    """A var as a SQL literal (what `{{ var('x') }}` prints), carrying `.raw`, the plain value.

    `.raw` is what `config(...)` keeps (e.g. a watermark delay '2 minutes');
    `.text` is the raw value as a quoted SQL string literal, for the Spark
    functions that take a duration only as a string (`window(ts, '1 minute')`).
    """

    raw: Any

    def __new__(cls, literal: str, raw: Any):
        obj = super().__new__(cls, literal)
        obj.raw = raw
        return obj

    @property
    def text(self) -> str:
        return sql_string(str(self.raw))


def resolve_vars(project: Project, overrides: dict[str, str] | None = None) -> dict[str, SqlVar]:
    """Every declared var as a typed literal, each value (project.yml's or a `--var` override)
    checked against the var's declared type and rules (runner/compile/vartypes.py)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(project.vars))
    if unknown:
        raise RunnerError(f"--var {unknown[0]}: no such var in project.yml", where="command line",
                          hint=f"declared vars: {', '.join(project.vars) or 'none'}")
    out: dict[str, SqlVar] = {}
    for name, spec in project.vars.items():
        from_cli = name in overrides
        value = overrides[name] if from_cli else spec.value
        try:
            literal, raw = checked(name, spec.type, spec.rules, value,
                                   declared_at=project.var_where(name) if from_cli else None)
        except TypeError as e:
            raise RunnerError(str(e), where=VAR_FROM_CLI if from_cli else project.var_where(name),
                              hint=f"e.g. --var {name}=<{spec.type}>") from None
        except ValueError as e:   # one line: the var, the value, the rule, where each is written
            raise RunnerError(str(e), where=VAR_FROM_CLI if from_cli else project.var_where(name)) from None
        out[name] = SqlVar(literal, raw)
    return out


def _unwrap(value: Any) -> Any:
    if isinstance(value, SqlVar):
        return value.raw
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value


def _template_location() -> tuple[str | None, int | None]:
    """The template file and line that called the running global (the innermost template frame)."""
    frame = sys._getframe(1)
    while frame is not None:
        tmpl = frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            return tmpl.filename, tmpl.get_corresponding_lineno(frame.f_lineno)
        frame = frame.f_back
    return None, None




@dataclass
class RenderedModel:
    name: str
    path: str                 # relative to the project root
    sql: str
    refs: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    vars: list[str] = field(default_factory=list)
    config: ModelConfig = field(default_factory=ModelConfig)
    ref_lines: dict[str, int] = field(default_factory=dict)  # first line each ref appears on


class Renderer:
    """Renders model files of one project with one set of vars."""

    def __init__(self, project: Project, var_overrides: dict[str, str] | None = None,
                 model_names: set[str] | None = None):
        self.project = project
        self.vars = resolve_vars(project, var_overrides)
        self.features: ModelFeatures = model_features(project)
        self.model_names = model_names
        self.root = project.root

    def _rel(self, filename: str | None) -> str:
        if not filename:
            return "?"
        p = Path(filename)
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def _where(self) -> str:
        filename, line = _template_location()
        return f"{self._rel(filename)}:{line}" if line else self._rel(filename)

    def _environment(self, model: RenderedModel) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.project.sql_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )

        def ref(name: str) -> str:
            where = self._where()
            if self.model_names is not None and name not in self.model_names:
                raise RunnerError(f"ref('{name}'): no model named '{name}' in {self._rel(str(self.project.sql_dir))}/",
                                  where=where, hint="a model's name is its file name without .sql")
            if name == model.name:
                raise RunnerError(f"model '{name}' refers to itself", where=where)
            if name not in model.refs:
                model.refs.append(name)
                model.ref_lines[name] = int(where.rsplit(":", 1)[1]) if ":" in where else 0
            return f"`{name}`"

        def source(kind: str, name: str) -> str:
            where = self._where()
            if kind != "kafka":
                raise RunnerError(f"source('{kind}', '{name}'): unknown source kind '{kind}'", where=where,
                                  hint="sources are declared under sources.kafka in project.yml")
            if name not in self.project.sources:
                raise RunnerError(f"source('{kind}', '{name}'): no such source in project.yml", where=where,
                                  hint=f"declared: {', '.join(self.project.sources) or 'none'}")
            if (kind, name) not in model.sources:
                model.sources.append((kind, name))
            return f"`{source_view(kind, name)}`"

        def var(name: str) -> SqlVar:
            if name not in self.vars:
                raise RunnerError(f"var('{name}') is not declared in project.yml", where=self._where(),
                                  hint=f"add it under vars: with a type and a value (declared: {', '.join(self.vars)})")
            if name not in model.vars:
                model.vars.append(name)
            return self.vars[name]

        def config(**kwargs: Any) -> str:
            model.config = parse_config(_unwrap(kwargs), self._where())
            return ""

        def source_schema(name: str) -> dict[str, str]:
            """project.yml's sources.kafka.<name>.schema (field -> Spark SQL type), in order."""
            if name not in self.project.sources:
                raise RunnerError(f"source_schema('{name}'): no such source in project.yml", where=self._where(),
                                  hint=f"declared: {', '.join(self.project.sources) or 'none'}")
            return dict(self.project.sources[name].schema)

        def schema_ddl(fields: dict, retype: dict | None = None, append: dict | None = None) -> str:
            """A schema as a quoted DDL string literal ('a STRING, b DOUBLE'), e.g. for from_json:
            `retype` changes the type of fields it names, `append` adds fields at the end."""
            where = self._where()
            unknown = sorted(set(retype or {}) - set(fields))
            if unknown:
                raise RunnerError(f"schema_ddl: retype names {', '.join(unknown)}, not fields of the schema",
                                  where=where, hint=f"fields: {', '.join(fields)}")
            merged = {**fields, **(retype or {}), **(append or {})}
            for name, type_ in merged.items():
                if not FIELD_NAME.match(str(name)) or not FIELD_TYPE.match(str(type_).strip()):
                    raise RunnerError(f"schema_ddl: {name!r} {type_!r} is not a field name and a Spark SQL type",
                                      where=where, hint="names are identifiers; types as in project.yml's schemas")
            return sql_string(", ".join(f"{name} {str(type_).strip()}" for name, type_ in merged.items()))

        env.globals.update(ref=ref, source=source, var=var, config=config, source_schema=source_schema,
                           schema_ddl=schema_ddl, model_features=list(self.features.names))
        macro_dir = self.project.sql_dir / MACRO_DIR
        for file in sorted(macro_dir.glob("*.sql")) if macro_dir.is_dir() else []:
            rel = f"{MACRO_DIR}/{file.name}"
            module = self._guard(lambda: env.get_template(rel).module, str(file))
            for attr in dir(module):
                if not attr.startswith("_"):
                    env.globals[attr] = getattr(module, attr)
        return env

    def _guard(self, fn: Callable[[], Any], filename: str) -> Any:
        """Run a Jinja step; turn its errors into RunnerError naming file:line."""
        try:
            return fn()
        except RunnerError:
            raise
        except jinja2.TemplateSyntaxError as e:
            raise RunnerError(f"template syntax error: {e.message}",
                              where=f"{self._rel(e.filename or filename)}:{e.lineno}") from None
        except Exception as e:  # UndefinedError, TypeError from a wrong call, ...
            tb = e.__traceback__
            line, file = None, filename
            while tb is not None:  # Jinja rewrites frames to template file names and lines
                co = tb.tb_frame.f_code.co_filename
                if co.endswith(".sql"):
                    line, file = tb.tb_lineno, co
                tb = tb.tb_next
            what = "undefined name: " + str(e) if isinstance(e, jinja2.UndefinedError) else f"{type(e).__name__}: {e}"
            raise RunnerError(what, where=f"{self._rel(file)}:{line}" if line else self._rel(file),
                              hint="SQL models may use ref, source, var, config, source_schema, schema_ddl, "
                                   "model_features and the macros in sql/macros/") from None

    def render(self, path: Path) -> RenderedModel:
        path = Path(path)
        rel_to_sql = path.resolve().relative_to(self.project.sql_dir.resolve()).as_posix()
        model = RenderedModel(name=path.stem, path=self._rel(str(path.resolve())), sql="")
        env = self._environment(model)
        template = self._guard(lambda: env.get_template(rel_to_sql), str(path.resolve()))
        text = self._guard(template.render, template.filename)
        model.sql = text.strip().rstrip(";").rstrip()
        return model
