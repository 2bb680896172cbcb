"""The report and the dashboard from a small finished run on disk (no Spark, no Kafka)."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from rich.console import Console
from runfixture import make_run

from runner.compile.project import load_project
from runner.tools import dashboard, report


@pytest.fixture(scope="module")
def run_project(tmp_path_factory):
    return load_project(make_run(tmp_path_factory.mktemp("run") / "project"))


def drawn(png, min_ink: float = 0.02) -> np.ndarray:
    """The image as RGB floats; asserts it is a real PNG with content beyond a white canvas."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert (img.min(axis=2) < 0.9).mean() > min_ink, f"{png} is (almost) blank"
    return img


def share(img: np.ndarray, rgb: tuple[float, float, float], tol: float = 0.08) -> float:
    return float((np.abs(img - np.array(rgb)).max(axis=2) < tol).mean())


TAB_BLUE, TAB_ORANGE, TAB_RED = (0.122, 0.467, 0.706), (1.0, 0.498, 0.055), (0.839, 0.153, 0.157)


def test_report_writes_three_plots_and_markdown(run_project, tmp_path):
    rep = report.build(run_project, tmp_path / "report")
    assert [p.name for p in rep.pngs] == [report.THRESHOLD_PNG, report.KPI_PNG, report.LATENCY_PNG]
    for p in rep.pngs:
        assert p.stat().st_size > 15_000
        drawn(p)
    # the threshold plot draws precision (blue) and recall (orange) lines
    img = drawn(rep.pngs[0])
    assert share(img, TAB_BLUE) > 0.002 and share(img, TAB_ORANGE) > 0.002
    # the KPI plot has red alert bars and blue true-fraud bars
    img = drawn(rep.pngs[1])
    assert share(img, TAB_RED) > 0.001 and share(img, TAB_BLUE) > 0.001

    n = rep.numbers
    assert n["kpis"]["windows"] == 12 and n["kpis"]["n_txn"] == sum(100 + i for i in range(12))
    assert n["kpis"]["tp"] == 2 and n["kpis"]["n_alert"] == sum(i % 3 for i in range(12))
    assert n["alerts"] == 10 and n["alerts_on_frauds"] == 2      # the uncommitted leftover file is not read
    assert n["rejected"] == 3 and n["rejected_reasons"] == {"malformed_json": 2, "missing_txn_id": 1}
    assert n["late_rows"] == 2
    lat = n["latency"]["fraud_alerts__parquet"]
    assert lat["batches"] == 20 and lat["max_ms"] == 30000 and lat["rows"] == 16 * 200

    md = rep.markdown.read_text()
    for p in rep.pngs:
        assert f"]({p.name})" in md
    assert "| 0.90 | 30 | 27 | 3 | 0.900 | 0.675 |" in md
    assert "12 closed one-minute windows" in md and "Rejected records: 3" in md


def test_report_of_a_run_without_outputs_still_draws(tmp_path):
    root = make_run(tmp_path / "p")
    import shutil
    shutil.rmtree(root / "output")
    shutil.rmtree(root / ".runtime")
    rep = report.build(load_project(root), tmp_path / "r")
    for p in rep.pngs:
        drawn(p, min_ink=0.002)  # axes and a sentence saying what is missing
    assert "0 closed one-minute windows" in rep.markdown.read_text()


def test_report_without_model_is_a_one_line_error(tmp_path, runner_cmd):
    root = make_run(tmp_path / "p")
    (root / "models" / "fraud_lr" / "model_card.json").unlink()
    r = subprocess.run([*runner_cmd, "--project", str(root), "report"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "no model card" in r.stderr and "hint: train a model" in r.stderr


def test_report_cli_writes_into_out(run_project, tmp_path, runner_cmd):
    r = subprocess.run([*runner_cmd, "--project", str(run_project.root), "report", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "report.md").exists() and (tmp_path / "o" / report.KPI_PNG).stat().st_size > 15_000


def test_dashboard_renders_kpis_alerts_queries_and_counts(run_project):
    snap = dashboard.Feed(run_project).snapshot()
    assert snap.kpi_windows == 12 and len(snap.kpis) == dashboard.KPI_ROWS
    assert snap.n_alerts == 10 and snap.rejected == 3 and snap.late == 2
    console = Console(record=True, width=170, color_system=None)
    console.print(dashboard.render(snap, "header line", console.width))
    text = console.export_text()
    assert "09:11-09:12" in text                      # the latest window
    assert "09:03-09:04" not in text                  # older than the last KPI_ROWS windows
    assert "fx-00000009" in text and "0.9450" in text  # the newest alert with its fraud_prob
    assert "fx-00000001" not in text                  # only the latest ALERT_ROWS alerts
    assert "fraud_alerts__parquet" in text and "kpi_per_minute__parquet" in text
    assert "rejected records: 3" in text and "late transactions left out of the KPIs (kept): 2" in text
    # rows/s and latency of the last batch with rows (batch 18: 200 rows in 1520 ms; 19 is empty)
    assert "1,520" in text and "132" in text


def test_dashboard_once_cli_and_narrow_terminal(run_project, runner_cmd):
    r = subprocess.run([*runner_cmd, "--project", str(run_project.root), "dashboard", "--once"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"})
    assert r.returncode == 0, r.stderr
    assert "KPIs per minute" in r.stdout and "Latest alerts" in r.stdout and "Queries" in r.stdout
    assert "fx-00000009" in r.stdout


def test_dashboard_before_any_batch(tmp_path):
    root = make_run(tmp_path / "p")
    import shutil
    shutil.rmtree(root / "output")
    shutil.rmtree(root / ".runtime")
    console = Console(record=True, width=120, color_system=None)
    console.print(dashboard.render(dashboard.Feed(load_project(root)).snapshot(), None, console.width))
    text = console.export_text()
    assert "none closed yet" in text and "no alerts yet" in text and "Spark is starting" in text
