"""Where Spark still refuses a var's value at analysis time (`runner plan` / `apply`), the error names
the vars whose values reached the refused model, not only Spark's message (issue 18).

A window of 0 seconds is the case the issue met: Spark reports it as an unresolved `window`.`start`
with a hint to check column names. The shipped project.yml refuses it at compile time (window has
`min: 1 second`), so this copy drops the rule, as a project that declares none would have it.
"""
from __future__ import annotations

import json

import pytest
import yaml
from projectcopy import copy_project, edit

from runner.compile.compiler import compile_project
from runner.compile.project import load_project
from runner.errors import RunnerError
from runner.stream import apply


def test_analysis_error_names_the_var_that_reached_the_model(spark, repo, tmp_path):
    root = copy_project(repo, tmp_path)
    edit(root, "project.yml", "window:    {type: interval, min: 1 second,", "window:    {type: interval,")
    # A card-only logistic regression: fraud_prob is native SQL from the card, no trained model needed.
    schema = yaml.safe_load((repo / "project.yml").read_text())["sources"]["kafka"]["transactions"]["schema"]
    features = [f for f, t in schema.items() if t == "DOUBLE" and f != "Time"]
    model = root / "models" / "card_only"
    model.mkdir(parents=True)
    (model / "model_card.json").write_text(json.dumps({
        "kind": "lr", "features": features,
        "lr": {"scaler_mean": [0.0] * len(features), "scaler_std": [1.0] * len(features),
               "coefficients": [0.1] * len(features), "intercept": -3.0}}))
    edit(root, "project.yml", "model: models/fraud_lr", "model: models/card_only")
    project = load_project(root)
    manifest = compile_project(project, {"window": "0 seconds"}, write=False)

    with pytest.raises(RunnerError) as info:
        apply.analyse(spark, project, manifest)
    err = info.value
    assert err.where == "sql/kpis/kpi_per_minute.sql"
    assert "Spark can not analyse this model: [UNRESOLVED_COLUMN" in err.message   # Spark's words, kept
    assert "; vars reaching it: window = '0 seconds' (--var on the command line), " in err.message
    assert "watermark = '2 minutes' (project.yml, via kpi_events)" in err.message
    assert err.hint.startswith("check those values first")
