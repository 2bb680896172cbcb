"""Restarting real queries from their checkpoints after a change: the verdicts `plan` gives and
`apply` acts on follow Spark's rules (programming guide, "Recovery Semantics after Changes")."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest
from streamkit import StreamProject, apply_in_process

from runner.compile.fingerprint import COMPATIBLE, INCOMPATIBLE, NEW, RESUME
from runner.errors import RunnerError
from runner.stream import apply as runtime
from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate

START = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
KPI_QUERIES = {"kpi_per_minute__console", "kpi_per_minute__kafka", "kpi_per_minute__late_rows", "kpi_per_minute__parquet"}


@pytest.fixture(scope="module")
def applied(spark, broker, lr_model, tmp_path_factory) -> StreamProject:
    sp = StreamProject(tmp_path_factory.mktemp("applied") / "project", broker, lr_model)
    replay.send(sp.kafka, sp.topic, generate(600, seed=21), start=START, id_prefix="r1")
    plans, result = apply_in_process(spark, sp)
    assert {p.verdict.kind for p in plans} == {NEW}
    assert result.exit_code == 0
    return sp


@pytest.fixture
def sp(applied, tmp_path) -> StreamProject:
    """A copy of the applied project, checkpoints and outputs included, on the same topics."""
    root = tmp_path / "project"
    shutil.copytree(applied.root, root)
    copy = StreamProject.__new__(StreamProject)
    copy.__dict__.update(applied.__dict__, root=root)
    return copy


def verdicts(sp, var_overrides=None) -> dict:
    return {p.name: p.verdict for p in runtime.plan(sp.load(), sp.compile(var_overrides), var_overrides)}


def more_rows(sp, seed: int, prefix: str, minutes_later: int = 30) -> None:
    rows = generate(1000, seed=seed)
    replay.send(sp.kafka, sp.topic, rows, start=START.replace(minute=minutes_later), id_prefix=prefix)


def test_unchanged_project_resumes(sp):
    assert {v.kind for v in verdicts(sp).values()} == {RESUME}


def test_formatting_only_edit_resumes(sp):
    f = sp.root / "sql" / "scoring" / "scored_transactions.sql"
    f.write_text("-- reformatted by an analyst\n" + f.read_text().replace("\n", "\n\n").replace(" AS ", "   AS   "))
    assert {v.kind for v in verdicts(sp).values()} == {RESUME}


def test_threshold_change_is_compatible_and_restarts(spark, sp):
    v = verdicts(sp, {"threshold": "0.3"})
    assert v["fraud_alerts__parquet"].kind == COMPATIBLE
    assert any("threshold '0.9' -> '0.3'" in r for r in v["fraud_alerts__parquet"].reasons)
    assert v["rejected_transactions__parquet"].kind == RESUME
    before = len(outputs.read(sp.output("alerts")))
    more_rows(sp, 22, "r2")
    plans, result = apply_in_process(spark, sp, var_overrides={"threshold": "0.3"})
    assert result.exit_code == 0
    alerts = outputs.read(sp.output("alerts"))
    assert len(alerts) > before
    assert (alerts[alerts.txn_id.str.startswith("r2-")].fraud_prob >= 0.3).all()
    assert {v.kind for v in verdicts(sp, {"threshold": "0.3"}).values()} == {RESUME}


def test_kpi_window_change_is_refused_until_reset(spark, sp):
    sp.raw["vars"]["window"]["value"] = "2 minutes"
    sp.write()
    v = verdicts(sp)
    assert {n for n, x in v.items() if x.kind == INCOMPATIBLE} == KPI_QUERIES
    assert "grouping keys changed" in v["kpi_per_minute__parquet"].reasons[0]
    assert "'1 minute') -> WINDOW(event_time, '2 minutes')" in v["kpi_per_minute__parquet"].reasons[0]
    project, manifest = sp.load(), sp.compile()
    with pytest.raises(RunnerError, match="--reset kpi_per_minute"):
        runtime.preflight(project, runtime.plan(project, manifest))

    moved = runtime.reset(project, manifest, "kpi_per_minute")
    assert any(dst.parent.name == "output" and dst.name == "kpis" for _, dst in moved)  # Parquet went too
    assert all(dst.exists() and not src.exists() for src, dst in moved)
    v = verdicts(sp)
    assert {v[q].kind for q in KPI_QUERIES} == {NEW}
    plans, result = apply_in_process(spark, sp)
    assert result.exit_code == 0
    kpis = outputs.read(sp.output("kpis"))
    assert len(kpis) > 0
    assert ((kpis.window_end - kpis.window_start) == "2min").all()


def test_source_topic_change_is_incompatible(sp):
    sp.raw["sources"]["kafka"]["transactions"]["topic"] = "transactions_elsewhere"
    sp.write()
    v = verdicts(sp)
    assert {x.kind for x in v.values()} == {INCOMPATIBLE}
    assert "subscribed topics changed" in v["fraud_alerts__kafka"].reasons[0]


def test_watermark_delay_change_resumes_on_real_queries(spark, sp):
    """Spark keeps no watermark delay in its state: a restart with a new delay runs and goes on
    closing windows with it, so the verdict is a compatible change."""
    v = verdicts(sp, {"watermark": "30 seconds"})
    assert {v[q].kind for q in KPI_QUERIES} == {COMPATIBLE}
    assert "watermark delay 2 minutes -> 30 seconds" in v["kpi_per_minute__parquet"].reasons[0]
    before = outputs.read(sp.output("kpis"))
    more_rows(sp, 23, "r3", minutes_later=20)
    plans, result = apply_in_process(spark, sp, var_overrides={"watermark": "30 seconds"})
    assert result.exit_code == 0
    after = outputs.read(sp.output("kpis"))
    assert after.window_start.max() > before.window_start.max()
