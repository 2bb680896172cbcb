"""The README's exercise commands that need a trained model: `runner plan` as the README writes it,
on a project whose queries have checkpoints (the runner.json `runner apply` writes first)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from test_readme import readme_command, run_readme  # noqa: E402


@pytest.fixture
def applied_project(tmp_path, lr_model):
    """A project copy whose queries have checkpoints, as `runner apply` leaves them (its runner.json)."""
    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.stream import apply as runtime
    from runner.stream import checkpoints

    root = tmp_path / "project"
    root.mkdir()
    raw = yaml.safe_load((REPO / "project.yml").read_text())
    raw["model"] = str(lr_model)
    (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copytree(REPO / "sql", root / "sql")
    project = load_project(root)
    groups: dict = {}
    for p in runtime.plan(project, compile_project(project, write=False)):
        groups.setdefault(p.checkpoint, []).append(p)
    for folder, members in groups.items():  # what start_queries writes before Spark starts a query
        checkpoints.write_meta(folder, {"query": folder.name, "members": {p.name: p.fingerprint for p in members},
                                        "sinks": {p.name: p.spec.sink for p in members},
                                        "written": "2026-01-05T09:00:00Z"})
    return root


def rows_of(stdout: str, query_prefix: str) -> list[str]:
    # a table on a terminal ("│ name ..."), plain aligned text off one ("name ...")
    return [line for line in stdout.splitlines() if line.strip().lstrip("│").strip().startswith(query_prefix)]


def test_exercise_plans(applied_project):
    """Exercise 2 exactly as written (Spark analyses the models), exercise 1's plan without Spark."""
    (watermark,) = [c for c in readme_command(".venv/bin/runner plan --var") if "watermark" in c]
    r = run_readme(watermark, applied_project, columns=400)
    assert r.returncode == 0, r.stdout + r.stderr
    kpis = rows_of(r.stdout, "kpi_per_minute__")
    assert len(kpis) == 4 and all("RESUME (compatible change)" in line for line in kpis), r.stdout  # console, kafka, late rows, parquet
    assert "watermark delay 2 minutes -> 30 seconds" in r.stdout
    alerts = rows_of(r.stdout, "fraud_alerts__parquet")
    assert alerts and "RESUME " in alerts[0] and "compatible" not in alerts[0], r.stdout

    (threshold,) = [c for c in readme_command(".venv/bin/runner plan --var") if "threshold" in c]
    r = run_readme(threshold + " --no-spark", applied_project, columns=400)
    assert r.returncode == 0, r.stdout + r.stderr
    alerts = rows_of(r.stdout, "fraud_alerts__parquet")
    assert alerts and "RESUME (compatible change)" in alerts[0], r.stdout
    assert "threshold '0.9' -> '0.8'" in r.stdout
