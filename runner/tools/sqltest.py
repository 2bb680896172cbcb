"""SQL unit tests, dbt-style: run one model as a batch query over given rows, compare with expect.

`runner test` and pytest (tests/sql/conftest.py) run the same cases: the `*.tests.yml` files
under sql/, next to the models they test. A file holds `unit_tests:`, a list of cases:

    unit_tests:
      - name: threshold_edge                       # unique in the file
        model: scored_transactions                 # the model under test
        vars: {threshold: 0.5}                     # optional, as --var would set them
        setup_sql: ["CREATE OR REPLACE TEMPORARY FUNCTION ..."]   # optional, run first
        given:
          - input: ref('stg_parsed')               # or source('kafka', 'transactions')
            schema: "txn_id STRING, V1 DOUBLE"     # optional: DDL; default the input's own columns
            rows:
              - {txn_id: a, V1: 0.5}
        expect:
          rows:
            - {txn_id: a, is_alert: true}          # only these columns are compared

Rows are YAML mappings; a column a row leaves out is NULL. Values are cast to the column types by
Spark (so '2026-01-01 00:00:30' is a timestamp). A STRING or BINARY column takes a mapping or
list as its JSON text (a Kafka record's value), a string as it is, YAML !!binary as raw bytes.
Besides `unit_tests:` a file may hold `shared:`, values the cases take with YAML anchors.

A ref without `schema:` gets the upstream model's own columns and types (Spark analyses it over
empty inputs); a source gets the columns Spark's Kafka source gives. Rows are compared as sets
(order does not matter); a difference prints chispa's table of the rows side by side.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from runner.compile.manifest import UNIT_TESTS_SUFFIX, source_view
from runner.compile.project import Project
from runner.errors import RunnerError

# What Spark's Kafka source gives a source view (the runtime registers the same columns).
KAFKA_SOURCE_DDL = ("key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, "
                    "timestamp TIMESTAMP, timestampType INT")

FILE_KEYS = {"unit_tests", "shared"}
CASE_KEYS = {"name", "model", "description", "vars", "setup_sql", "given", "expect"}
GIVEN_KEYS = {"input", "schema", "rows"}
EXPECT_KEYS = {"rows"}

_REF = re.compile(r"""^ref\(\s*['"](\w+)['"]\s*\)$""")
_SOURCE = re.compile(r"""^source\(\s*['"](\w+)['"]\s*,\s*['"](\w+)['"]\s*\)$""")


@dataclass
class SqlCase:
    name: str
    model: str
    given: list[dict]
    expect: list[dict]
    vars: dict[str, Any] = field(default_factory=dict)
    setup_sql: list[str] = field(default_factory=list)
    file: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class CaseFailed(AssertionError):
    """The model's rows differ from the case's expect (an AssertionError, so pytest reports a failure)."""


@dataclass
class CaseResult:
    case: SqlCase
    error: str | None = None     # None: passed
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------- reading cases

def input_name(text: str) -> str:
    """A `given` input as run_model names it: a model name, or 'kind.name' for a source.
    Takes dbt's spellings, ref('m') and source('kafka', 't'), and the short ones, m and kafka.t."""
    text = str(text).strip()
    if m := _REF.match(text):
        return m.group(1)
    if m := _SOURCE.match(text):
        return f"{m.group(1)}.{m.group(2)}"
    if re.fullmatch(r"\w+(\.\w+)?", text):
        return text
    raise ValueError(f"input '{text}' is neither ref('model') nor source('kind', 'name')")


def unit_test_files(project: Project) -> list[Path]:
    """Every unit-test file under the project's sql/ folder, in path order."""
    return sorted(project.sql_dir.rglob(f"*{UNIT_TESTS_SUFFIX}")) if project.sql_dir.is_dir() else []


def _shown(path: Path, root: Path | None) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve())) if root else str(path)
    except ValueError:
        return str(path)


def _case_lines(text: str) -> list[int]:
    """The line each case of `unit_tests:` starts on (1-based)."""
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return []
    cases = next((v for k, v in node.value if k.value == "unit_tests"), None)
    return [item.start_mark.line + 1 for item in cases.value] if isinstance(cases, yaml.SequenceNode) else []


def load_cases(path: str | Path, root: Path | None = None) -> list[SqlCase]:
    """The cases of one file; `root` (the project folder) makes the file:line in messages relative."""
    path = Path(path)
    shown = _shown(path, root)
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
        lines = _case_lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RunnerError(f"not valid YAML: {getattr(e, 'problem', None) or e}",
                          where=f"{shown}:{mark.line + 1}" if mark else shown) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("unit_tests"), list):
        raise RunnerError("a unit-test file holds `unit_tests:`, a list of cases", where=shown,
                          hint="see README, 'Writing a SQL unit test'")
    unknown = set(raw) - FILE_KEYS
    if unknown:
        raise RunnerError(f"unknown top-level key(s) {', '.join(sorted(unknown))}", where=shown,
                          hint=f"a unit-test file holds {' and '.join(sorted(FILE_KEYS))}")
    cases, names = [], set()
    for i, t in enumerate(raw["unit_tests"]):
        where = f"{shown}:{lines[i]}" if i < len(lines) else shown
        cases.append(_case(t, i, where, shown, lines[i] if i < len(lines) else 0))
        if cases[-1].name in names:
            raise RunnerError(f"two cases named '{cases[-1].name}'", where=where, hint="case names are unique in a file")
        names.add(cases[-1].name)
    return cases


def _case(t: Any, i: int, where: str, file: str, line: int) -> SqlCase:
    def bad(message: str) -> RunnerError:
        return RunnerError(f"case #{i + 1}: {message}", where=where, hint="see README, 'Writing a SQL unit test'")

    if not isinstance(t, dict):
        raise bad("a case is a mapping (name, model, given, expect)")
    for key in ("name", "model", "given", "expect"):
        if key not in t:
            raise bad(f"no '{key}'")
    if set(t) - CASE_KEYS:
        raise bad(f"unknown key(s) {', '.join(sorted(set(t) - CASE_KEYS))}; a case has {', '.join(sorted(CASE_KEYS))}")
    given = []
    for g in t["given"] or []:
        if not isinstance(g, dict) or "input" not in g or set(g) - GIVEN_KEYS:
            raise bad(f"each given is a mapping of {', '.join(sorted(GIVEN_KEYS))} (input required), got {g!r:.80}")
        try:
            name = input_name(g["input"])
        except ValueError as e:
            raise bad(str(e)) from None
        given.append({"input": name, "schema": g.get("schema"), "rows": _rows(g.get("rows"), bad)})
    expect = t["expect"] or {}
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        raise bad("expect is a mapping with rows:")
    return SqlCase(name=str(t["name"]), model=str(t["model"]), given=given, expect=_rows(expect.get("rows"), bad),
                   vars=t.get("vars") or {}, setup_sql=list(t.get("setup_sql") or []), file=file, line=line)


def _rows(rows: Any, bad: Callable[[str], RunnerError]) -> list[dict]:
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise bad("rows is a list of mappings, one per row: - {column: value, ...}")
    return [{str(k): v for k, v in r.items()} for r in rows]


def project_cases(project: Project, select: str | None = None) -> list[SqlCase]:
    """Every case under sql/ (only MODEL's with select), each naming a model that exists."""
    from runner.compile.compiler import model_files

    models = model_files(project)
    if select is not None and select not in models:
        raise RunnerError(f"--select {select}: no model named '{select}'", hint=f"models: {', '.join(sorted(models))}")
    cases = [c for path in unit_test_files(project) for c in load_cases(path, project.root)]
    for c in cases:
        if c.model not in models:
            raise RunnerError(f"case '{c.name}' tests model '{c.model}', which sql/ does not have", where=c.where,
                              hint=f"models: {', '.join(sorted(models))}")
    return [c for c in cases if select is None or c.model == select]


# --------------------------------------------------------------------------- running a model

def _input_view(name: str) -> str:
    if "." in name:
        kind, src = name.split(".", 1)
        return source_view(kind, src)
    return name


def render_model(project: Project, model: str, vars: dict[str, Any] | None = None):
    """The model as `compile` renders it, with `vars` as --var overrides."""
    from runner.compile import compiler

    return compiler.render_model(project, model, {k: _text(v) for k, v in (vars or {}).items()})


def _inputs_of(rendered) -> list[str]:
    return list(rendered.refs) + [f"{k}.{n}" for k, n in rendered.sources]


def run_model(spark, project: Project, model: str, inputs: dict[str, Any], vars: dict[str, Any] | None = None):
    """The model's SELECT over `inputs` (ref name or 'kafka.<source>' -> DataFrame), as a batch DataFrame."""
    rendered = render_model(project, model, vars)
    needed = _inputs_of(rendered)
    missing = [n for n in needed if n not in inputs]
    if missing:
        raise RunnerError(f"model '{model}' reads {', '.join(missing)} but no input was given for it",
                          hint=f"give inputs for: {', '.join(needed)}")
    for name, df in inputs.items():
        df.createOrReplaceTempView(_input_view(name))
    return spark.sql(rendered.sql)


def model_schema(spark, project: Project, model: str, vars: dict[str, Any] | None = None):
    """The columns and types `model` returns, found by Spark analysing it over empty inputs (upstream
    models the same way, down to the sources); no row is read."""
    rendered = render_model(project, model, vars)
    inputs = {name: spark.createDataFrame([], KAFKA_SOURCE_DDL if "." in name else model_schema(spark, project, name, vars))
              for name in _inputs_of(rendered)}
    return run_model(spark, project, model, inputs, vars).schema


def _text(value: Any) -> Any:
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    def refuse(v: Any):
        raise RunnerError(f"{v!r} (YAML read it as a {type(v).__name__}) has no JSON form",
                          hint="quote it in the YAML ('2026-01-01T00:00:05Z'), so the JSON gets it as written")
    # allow_nan: YAML's .nan and -.inf become NaN and -Infinity, which Spark's JSON reader takes
    return json.dumps(value, allow_nan=True, default=refuse)


def frame(spark, schema, rows: list[dict]):
    """A DataFrame of `rows` with `schema` (DDL string or StructType), values cast by Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BinaryType, StringType, StructField, StructType

    struct = spark.createDataFrame([], schema).schema if isinstance(schema, str) else schema
    names = [f.name for f in struct.fields]
    for row in rows:
        unknown = set(row) - set(names)
        if unknown:
            raise RunnerError(f"row has column(s) {', '.join(sorted(unknown))} not in the schema ({', '.join(names)})")
    text_schema = StructType([StructField(f.name, BinaryType() if isinstance(f.dataType, BinaryType) else StringType())
                              for f in struct.fields])
    data = []
    for row in rows:
        values = []
        for f in struct.fields:
            v = row.get(f.name)
            if isinstance(f.dataType, BinaryType) and isinstance(v, (str, dict, list)):
                v = (v if isinstance(v, str) else _json(v)).encode("utf-8")
            values.append(bytearray(v) if isinstance(v, (bytes, bytearray)) else _text(v))
        data.append(tuple(values))
    df = spark.createDataFrame(data, text_schema)
    return df.select([F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in struct.fields])


# --------------------------------------------------------------------------- checking a case

def check_case(spark, project: Project, case: SqlCase, *, colour: bool = False) -> None:
    """Run the case's model over its given rows; raise CaseFailed, with chispa's table of the rows
    side by side, when the result differs from expect. `colour`: chispa's terminal colours."""
    try:
        for stmt in case.setup_sql:
            spark.sql(stmt)
        schemas = {g["input"]: _given_schema(spark, project, case, g) for g in case.given}
        inputs = {g["input"]: _given_frame(spark, g["input"], schemas[g["input"]], g["rows"]) for g in case.given}
        actual = run_model(spark, project, case.model, inputs, case.vars)
    except RunnerError as e:
        raise RunnerError(f"case '{case.name}': {e.message}", where=case.where, hint=e.hint) from None
    columns = list(dict.fromkeys(c for row in case.expect for c in row)) or actual.columns
    missing = [c for c in columns if c not in actual.columns]
    if missing:
        raise CaseFailed(f"{case.name} ({case.where}): model '{case.model}' has no column(s) {', '.join(missing)}; "
                         f"it has {', '.join(actual.columns)}")
    actual = actual.select(*[f"`{c}`" for c in columns])
    try:
        expected = frame(spark, actual.schema, case.expect)
    except RunnerError as e:
        raise RunnerError(f"case '{case.name}', expect: {e.message}", where=case.where) from None
    got, want = _sorted_rows(actual), _sorted_rows(expected)
    if got == want:
        return
    raise CaseFailed(f"{case.name} ({case.where}): model '{case.model}' differs from expect "
                     f"({len(got)} rows returned, {len(want)} expected)\n"
                     + "\n".join(_row_differences(got, want))
                     + "\n" + _chispa_table(got, want, colour) + "\n  df1: the model's rows, df2: expect (both sorted)")


def _given_schema(spark, project: Project, case: SqlCase, given: dict):
    if given["schema"]:
        return given["schema"]
    name = given["input"]
    if "." in name:
        return KAFKA_SOURCE_DDL
    try:
        return model_schema(spark, project, name, case.vars)
    except RunnerError:
        raise
    except Exception as e:   # Spark could not analyse the upstream model on its own
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RunnerError(f"the columns of input '{name}' could not be worked out from its model ({first})",
                          hint=f"give them: `schema: \"col TYPE, ...\"` under the input {name}") from None


def _given_frame(spark, name: str, schema, rows: list[dict]):
    try:
        return frame(spark, schema, rows)
    except RunnerError as e:
        raise RunnerError(f"input {name}: {e.message}") from None


def _sorted_rows(df) -> list:
    """The rows in one order for both sides: by every column, complex ones by their hash (as chispa sorts)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StructType

    keys = [F.hash(F.col(f"`{f.name}`")) if isinstance(f.dataType, (StructType, ArrayType, MapType))
            else F.col(f"`{f.name}`") for f in df.schema.fields]
    return df.sort(*keys).collect()


def _row_differences(got: list, want: list) -> list[str]:
    """One line per row pair that differs: which columns, the model's value and expect's."""
    lines = []
    for i, (a, e) in enumerate(zip_longest(got, want), start=1):
        if a is None:
            lines.append(f"  row {i}: expect has a row the model does not return: {e.asDict()}")
        elif e is None:
            lines.append(f"  row {i}: the model returns a row expect does not have: {a.asDict()}")
        elif a != e:
            cells = [f"{c} is {a[c]!r}, expect says {e[c]!r}" for c in a.__fields__ if a[c] != e[c]]
            lines.append(f"  row {i}: " + "; ".join(cells))
    return lines


def _chispa_table(got: list, want: list, colour: bool) -> str:
    import chispa
    from chispa.formatting import Format

    formats = chispa.FormattingConfig() if colour else chispa.FormattingConfig(Format(), Format(), Format(), Format())
    try:
        chispa.assert_basic_rows_equality(got, want, formats=formats)
    except chispa.DataFramesNotEqualError as e:
        return str(e).strip("\n")
    return ""


# --------------------------------------------------------------------------- running cases

def run_cases(spark, project: Project, cases: list[SqlCase], *, colour: bool = False) -> Iterator[CaseResult]:
    """Each case checked in turn: passed, or failed with its readable difference (or error)."""
    for case in cases:
        start = time.monotonic()
        try:
            check_case(spark, project, case, colour=colour)
            yield CaseResult(case, None, time.monotonic() - start)
        except CaseFailed as e:
            yield CaseResult(case, str(e), time.monotonic() - start)
        except RunnerError as e:
            yield CaseResult(case, str(e), time.monotonic() - start)
        except Exception as e:
            if not type(e).__module__.startswith(("pyspark", "py4j")):
                raise   # a bug in the runner: its traceback
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            yield CaseResult(case, f"{case.where}: case '{case.name}': Spark failed: {first}", time.monotonic() - start)
