"""Output a CI job can read (issue 17): `runner plan --detailed-exitcode` gives one code per kind of
plan, `--format json` prints one versioned document per verb, and tables written anywhere but a
terminal are plain aligned text. Against a copy of the project, in process, without Spark
(`plan --no-spark`): the checkpoint a plan compares with is the runner.json that apply writes
beside Spark's files (tests/stream/test_quiet_cli.py runs the same codes against a real apply)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from projectcopy import copy_project, edit

from runner.cli import cli
from runner.compile.fingerprint import COMPATIBLE, INCOMPATIBLE, NEW, RESUME, plan_exit_code
from runner.output import Grid, plain_lines

BOX = set("─│┃━┏┓┗┛┡┩└┘┌┐├┤┼╇╈┳┻╋")


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    root = copy_project(repo, tmp_path)
    # the model card sits next to the project as in the repo (plan checks features against it)
    edit(root, "project.yml", "model: models/fraud_lr", f"model: {repo / 'models' / 'fraud_lr'}")
    return root


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(root), *args], prog_name="runner")


def checkpoint_as_applied(root: Path) -> None:
    """What `runner apply` leaves for the plan to compare with: each query's runner.json holding
    its sinks' fingerprints (runner/stream/apply.py start_queries)."""
    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.stream import apply as runtime
    from runner.stream import checkpoints

    project = load_project(root)
    plans = runtime.plan(project, compile_project(project, write=False))
    for group in {p.group for p in plans}:
        members = [p for p in plans if p.group == group]
        checkpoints.write_meta(members[0].checkpoint, {
            "query": group, "kind": members[0].query.kind, "reads": members[0].query.reads,
            "members": {p.name: p.fingerprint for p in members}, "sinks": {p.name: p.spec.sink for p in members}})


def test_exit_code_is_the_worst_verdicts():
    assert plan_exit_code([RESUME, RESUME]) == 0
    assert plan_exit_code([RESUME, NEW]) == 2
    assert plan_exit_code([RESUME, COMPATIBLE]) == 2
    assert plan_exit_code([NEW, INCOMPATIBLE, COMPATIBLE]) == 3
    assert plan_exit_code([]) == 0


def test_detailed_exitcode_0_when_every_query_resumes_unchanged(project_copy):
    checkpoint_as_applied(project_copy)
    r = run(project_copy, "plan", "--no-spark", "--detailed-exitcode")
    assert r.exit_code == 0, r.output
    assert "RESUME" in r.output and "INCOMPATIBLE" not in r.output


def test_detailed_exitcode_2_for_new_queries(project_copy):
    r = run(project_copy, "plan", "--no-spark", "--detailed-exitcode")
    assert r.exit_code == 2, r.output
    assert run(project_copy, "plan", "--no-spark").exit_code == 0   # without the flag a change is no failure


def test_detailed_exitcode_2_for_a_compatible_change(project_copy):
    checkpoint_as_applied(project_copy)
    r = run(project_copy, "plan", "--no-spark", "--detailed-exitcode", "--var", "threshold=0.5")
    assert r.exit_code == 2, r.output
    assert COMPATIBLE in r.output and INCOMPATIBLE not in r.output


def test_detailed_exitcode_3_when_a_kpi_state_would_reset(project_copy):
    checkpoint_as_applied(project_copy)
    edit(project_copy, "project.yml", "value: 1 minute}", "value: 2 minutes}")   # the KPI window
    r = run(project_copy, "plan", "--no-spark", "--detailed-exitcode")
    assert r.exit_code == 3, r.output
    assert "apply will refuse this" in r.output
    assert run(project_copy, "plan", "--no-spark").exit_code == 3   # refused also without the flag


def test_detailed_exitcode_1_on_an_error(project_copy, runner_cmd):
    import subprocess
    r = subprocess.run([*runner_cmd, "--project", str(project_copy), "plan", "--no-spark", "--detailed-exitcode",
                        "--var", "threshold=high"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "var 'threshold' is double" in r.stderr


def test_plan_json_document(project_copy):
    checkpoint_as_applied(project_copy)
    edit(project_copy, "project.yml", "value: 1 minute}", "value: 2 minutes}")
    r = run(project_copy, "plan", "--no-spark", "--format", "json", "--detailed-exitcode")
    assert r.exit_code == 3
    doc = json.loads(r.output)   # one document, nothing else on stdout
    assert set(doc) == {"format_version", "verb", "analysed_models", "queries", "sinks", "summary", "detailed_exitcode"}
    assert doc["format_version"] == 1 and doc["verb"] == "plan" and doc["analysed_models"] is None
    assert doc["detailed_exitcode"] == 3
    sink_keys = {"name", "model", "kind", "location", "query", "checkpoint", "verdict", "reasons"}
    assert all(set(s) == sink_keys for s in doc["sinks"])
    by_name = {s["name"]: s for s in doc["sinks"]}
    assert by_name["kpi_per_minute__parquet"]["verdict"] == INCOMPATIBLE
    assert by_name["fraud_alerts__parquet"]["verdict"] == RESUME
    assert all(set(q) == {"name", "checkpoint", "sinks"} for q in doc["queries"])
    assert sorted(n for q in doc["queries"] for n in q["sinks"]) == sorted(by_name)
    assert sum(doc["summary"].values()) == len(doc["sinks"])


def test_compile_json_document(project_copy):
    r = run(project_copy, "compile", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert set(doc) == {"format_version", "verb", "project", "manifest", "models"}
    assert doc["format_version"] == 1 and doc["verb"] == "compile"
    assert Path(doc["manifest"]).is_file()
    models = {m["name"]: m for m in doc["models"]}
    assert all(set(m) == {"name", "path", "refs", "sources", "sinks", "fingerprint"} for m in models.values())
    assert {s["kind"] for s in models["fraud_alerts"]["sinks"]} == {"kafka", "parquet"}
    assert models["fraud_alerts"]["refs"] == ["scored_transactions"]


def test_status_json_document_without_queries(project_copy):
    r = run(project_copy, "status", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"format_version": 1, "verb": "status",
                                    "checkpoint_root": str(project_copy / "checkpoints"),
                                    "queries": [], "rejected_by_reason": {}}


def test_lineage_json_document(project_copy):
    r = run(project_copy, "lineage", "fraud_alerts.Amount", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["verb"] == "lineage" and doc["column"] == "fraud_alerts.Amount"
    assert doc["source_columns"] == [{"source": "kafka.transactions", "column": "value", "field": "Amount"}]


@pytest.mark.parametrize("args", [("plan", "--no-spark"), ("compile",), ("plan", "--no-spark", "--format", "text")])
def test_tables_are_plain_text_off_a_terminal(project_copy, args):
    r = run(project_copy, *args)   # CliRunner's stdout is not a terminal
    assert r.exit_code in (0, 2), r.output
    assert not BOX & set(r.output), r.output
    lines = r.output.splitlines()
    if args[0] == "plan":   # one line per sink, the reason whole on it
        rows = [line for line in lines if "__" in line.split(" ")[0]]
        assert len(rows) == 9 and all(line.endswith("the query starts from the source's starting offsets")
                                      for line in rows)
        assert lines[-1] == "9 sinks in 4 queries"


def test_plain_lines_align_columns_and_keep_cells_whole():
    grid = Grid(["sink", "n", "why"], right={"n"})
    grid.add("fraud_alerts__parquet", 7, "first reason\nsecond reason")
    grid.add("kpis", 12, "")
    assert plain_lines(grid) == ["sink                    n  why",
                                 "fraud_alerts__parquet   7  first reason; second reason",
                                 "kpis                   12"]


def test_a_verb_that_started_no_spark_leaves_no_log_settings_behind(project_copy):
    from runner.stream import spark_log

    assert run(project_copy, "compile").exit_code == 0
    assert spark_log.settings() is None   # a session built later in this process logs as it always did


def test_apply_refusal_counts_sinks_and_queries_apart(project_copy):
    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.errors import RunnerError
    from runner.stream import apply as runtime

    checkpoint_as_applied(project_copy)
    edit(project_copy, "project.yml", "value: 1 minute}", "value: 2 minutes}")
    project = load_project(project_copy)
    with pytest.raises(RunnerError, match="^4 sinks in 1 query can not resume from its checkpoint: kpi_per_minute__"):
        runtime.preflight(project, runtime.plan(project, compile_project(project, write=False)))


def test_a_terminal_too_narrow_for_the_table_gets_a_block_per_row():
    import io

    from rich.console import Console

    from runner.output import TABLE, render

    grid = Grid(["sink", "runs in query", "verdict", "why"], title="plan")
    grid.add("rejected_transactions__parquet", "rejected_transactions__parquet", "NEW",
             "no checkpoint yet: the query starts from the source's starting offsets")

    def shown(width: int) -> str:
        out = io.StringIO()
        render(Console(file=out, width=width, force_terminal=True, color_system=None), grid, TABLE)
        return out.getvalue()

    wide, narrow = shown(200), shown(80)
    assert "┃ sink" in wide and "rejected_transactions__parquet │" in wide
    assert not BOX & set(narrow)
    assert narrow.splitlines()[:3] == ["plan:", "rejected_transactions__parquet",
                                       "  runs in query: rejected_transactions__parquet"]
    assert all(len(line) <= 80 for line in narrow.splitlines())
