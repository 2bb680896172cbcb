"""runner train, the model card, and fraud_prob compiled to SQL (issue 4).

One LR and one (small) GBT model are trained once per module on synthetic rows.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import time

import numpy as np
import pytest

import udfs
from runner.errors import RunnerError
from runner.tools import train as training
from runner.tools.synth import COLUMNS, V_COLS, generate
from udfs.gbt_sql import gbt_expression

N_TRAIN = 20_000
# What `runner train` fits on creditcard-layout data when no project names features: its columns
# but Time and Class, in order (the shipped project.yml's DOUBLE fields but Time are the same).
FEATURES = [*V_COLS, "Amount"]
ARGS = ", ".join(FEATURES)


@pytest.fixture(scope="module")
def models(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    data = training.load_synthetic(N_TRAIN, seed=42)
    lr = training.train(spark, data, kind="lr", out_dir=out)
    gbt = training.train(spark, data, kind="gbt", out_dir=out, max_iter=6, max_depth=4)
    return {"lr": lr, "gbt": gbt, "out": out, "data": data}


@pytest.fixture(scope="module")
def scoring_rows(spark, tmp_path_factory):
    """10,000 fresh rows (another seed) read from Parquet, so plans are real scans, not constants."""
    from pyspark.sql import functions as F

    path = tmp_path_factory.mktemp("rows") / "rows.parquet"
    spark.createDataFrame(generate(10_000, seed=7)).withColumn("rid", F.monotonically_increasing_id()) \
        .write.parquet(str(path))
    return spark.read.parquet(str(path))


def executed_plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


# --------------------------------------------------------------------------- synth

def test_synth_layout_deterministic_and_fast():
    a, b = generate(3_000, seed=5), generate(3_000, seed=5)
    assert list(a.columns) == COLUMNS
    assert a.equals(b)
    assert not a.equals(generate(3_000, seed=6))
    assert str(a["Class"].dtype) == "int64"
    assert all(str(a[c].dtype) == "float64" for c in COLUMNS if c != "Class")

    start = time.perf_counter()
    big = generate(500_000, seed=42)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"500k rows took {elapsed:.1f}s"
    assert big["Time"].is_monotonic_increasing and big["Time"].iloc[0] == 0.0
    assert 1.5 < len(big) / big["Time"].iloc[-1] < 1.8          # ~1.65 rows per second
    assert 0.0013 < big["Class"].mean() < 0.0021                  # ~0.17% frauds
    assert (big["Amount"] > 0).all() and big["Amount"].median() < big["Amount"].mean()
    fraud, normal = big[big.Class == 1], big[big.Class == 0]
    assert fraud["V14"].mean() < normal["V14"].mean() - 1.5       # the learnable signal
    assert abs(normal["V1"].mean()) < 0.05


# --------------------------------------------------------------------------- train + card

def test_card_contents(models):
    import pyspark

    for kind in ("lr", "gbt"):
        res = models[kind]
        card = json.loads((res.model_dir / "model_card.json").read_text())
        assert card == json.loads(json.dumps(res.card))
        assert res.model_dir.name == f"fraud_{kind}"
        assert card["kind"] == kind
        assert card["features"] == FEATURES
        assert card["pyspark_version"] == pyspark.__version__
        datetime.datetime.fromisoformat(card["created"])
        assert card["data"]["sha256"] == models["data"].sha256 and len(card["data"]["sha256"]) == 64
        assert card["data"]["rows"] == N_TRAIN and card["data"]["duplicates"] == 0
        split = card["split"]
        assert split["train_rows"] + split["test_rows"] == card["data"]["rows_after_dedup"] == N_TRAIN
        assert 0.78 < split["train_rows"] / N_TRAIN < 0.82
        tc = split["train_class_counts"]
        assert card["class_weight"]["1"] == pytest.approx(tc["0"] / tc["1"])
        assert 0.0 < card["metrics"]["pr_auc"] <= 1.0 and 0.5 < card["metrics"]["roc_auc"] <= 1.0
        assert (res.model_dir / "pipeline" / "metadata").is_dir()
        assert (res.model_dir / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not list(models["out"].glob(".*tmp*"))
    lr = models["lr"].card["lr"]
    assert len(lr["scaler_mean"]) == len(lr["scaler_std"]) == len(lr["coefficients"]) == 29
    assert models["gbt"].card["gbt"]["num_trees"] == 6


def test_threshold_table_shape(models):
    for kind in ("lr", "gbt"):
        card = models[kind].card
        table = card["threshold_table"]
        assert [r["threshold"] for r in table] == [0.5, 0.7, 0.8, 0.9, 0.95]
        frauds = card["metrics"]["test_frauds"]
        assert frauds == card["split"]["test_class_counts"]["1"] > 0
        alerts = [r["alerts"] for r in table]
        assert alerts == sorted(alerts, reverse=True)
        for r in table:
            assert set(r) == {"threshold", "alerts", "tp", "fp", "precision", "recall", "f1"}
            assert r["tp"] + r["fp"] == r["alerts"]
            assert r["recall"] == pytest.approx(r["tp"] / frauds)
            if r["alerts"]:
                assert r["precision"] == pytest.approx(r["tp"] / r["alerts"])
                p, rc = r["precision"], r["recall"]
                assert r["f1"] == pytest.approx(0 if p + rc == 0 else 2 * p * rc / (p + rc))
            else:
                assert r["precision"] is None


def test_pr_auc_equals_the_lab_recipe(spark, models):
    """Our recipe IS the lab's: the notebook's cell 5, run as written on the same rows, gives the same PR-AUC."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import functions as F

    pdf = models["data"].frame.copy().drop_duplicates()
    pdf["event_time"] = datetime.datetime(2025, 12, 16, 12, 46, 3) + \
        __import__("pandas").to_timedelta(pdf["Time"], unit="s")
    sdf = spark.createDataFrame(pdf)
    feature_cols = [c for c in sdf.columns if c.startswith("V")] + ["Amount"]
    label_col = "Class"
    train, test = sdf.randomSplit([0.8, 0.2], seed=42)
    counts = {row[label_col]: row["count"] for row in train.groupBy(label_col).count().collect()}
    w1 = counts.get(0, 1) / max(counts.get(1, 1), 1)
    train = train.withColumn("weight", F.when(F.col(label_col) == 1, F.lit(float(w1))).otherwise(F.lit(1.0)))
    assembler = VectorAssembler(inputCols=feature_cols, outputCol="features_raw")
    scaler = StandardScaler(inputCol="features_raw", outputCol="features", withMean=True, withStd=True)
    lr = LogisticRegression(featuresCol="features", labelCol=label_col, weightCol="weight", maxIter=50)
    model = Pipeline(stages=[assembler, scaler, lr]).fit(train)
    lab_pr_auc = BinaryClassificationEvaluator(labelCol=label_col, rawPredictionCol="rawPrediction",
                                               metricName="areaUnderPR").evaluate(model.transform(test))

    ours = models["lr"].card
    assert {str(k): v for k, v in sorted(counts.items())} == ours["split"]["train_class_counts"]
    assert ours["metrics"]["pr_auc"] >= lab_pr_auc - 1e-12
    assert ours["metrics"]["pr_auc"] == pytest.approx(lab_pr_auc, abs=1e-12)  # same recipe, same number


# --------------------------------------------------------------------------- fraud_prob

@pytest.mark.parametrize("kind", ["lr", "gbt"])
def test_fraud_prob_equals_pipeline_probability(spark, models, scoring_rows, kind):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    card = udfs.register(spark, models[kind].model_dir)
    assert card["kind"] == kind
    pm = PipelineModel.load(str(models[kind].model_dir / "pipeline"))
    both = (pm.transform(scoring_rows)
            .select(vector_to_array("probability")[1].alias("p_ml"), F.expr(f"fraud_prob({ARGS})").alias("p_sql"))
            .toPandas())
    assert len(both) == 10_000
    diff = np.abs(both["p_ml"].to_numpy() - both["p_sql"].to_numpy())
    assert diff.max() < 1e-9, f"max |diff| = {diff.max()}"
    assert both["p_sql"].std() > 0.01 and both["p_sql"].between(0, 1).all()


@pytest.mark.parametrize("kind", ["lr", "gbt"])
def test_fraud_prob_plan_has_no_python_node(spark, models, scoring_rows, kind):
    from pyspark.ml import PipelineModel
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    udfs.register(spark, models[kind].model_dir)
    native = executed_plan(scoring_rows.selectExpr("rid", f"fraud_prob({ARGS}) AS p"))
    assert "BatchEvalPython" not in native and "ArrowEvalPython" not in native
    assert "Project" in native and "Scan parquet" in native
    # Control: the seed's way (transform + a Python UDF on probability[1]) does show a Python node
    # (ArrowEvalPython: Spark 4 runs plain Python UDFs Arrow-optimized by default).
    p1 = F.udf(lambda v: float(v[1]), DoubleType())
    pm = PipelineModel.load(str(models[kind].model_dir / "pipeline"))
    seed = executed_plan(pm.transform(scoring_rows).select(p1("probability").alias("p")))
    assert "BatchEvalPython" in seed or "ArrowEvalPython" in seed


def test_gbt_projection_stays_out_of_whole_stage_codegen(spark, models, scoring_rows):
    """The GBT's trees would overflow whole-stage codegen's single 64 KB method (and Spark would retry
    and fail that compile on every execution); its expression keeps its projection out of whole-stage
    codegen by itself (udfs/gbt_sql.py), in any session. The small LR expression stays in it (control)."""
    def project_line(kind: str) -> str:
        udfs.register(spark, models[kind].model_dir)
        plan = executed_plan(scoring_rows.selectExpr("rid", f"fraud_prob({ARGS}) AS p"))
        return next(line for line in plan.splitlines() if "Project [" in line).lstrip(" +-:")

    assert project_line("lr").startswith("*("), "control: the LR projection is whole-stage generated"
    assert not project_line("gbt").startswith("*("), "the GBT projection was put into whole-stage codegen"
    body, summary = gbt_expression(models["gbt"].model_dir / "pipeline")
    assert summary["trees"] == 6 and body.count("\n") < 20, "one line per tree: Spark parses the body per query"


@pytest.mark.parametrize("kind", ["lr", "gbt"])
def test_fraud_prob_null_feature_gives_null(spark, models, kind):
    udfs.register(spark, models[kind].model_dir)
    args = ", ".join("CAST(NULL AS DOUBLE)" if f == "V14" else "0.5D" for f in FEATURES)
    row = spark.sql(f"SELECT fraud_prob({args}) AS p, fraud_prob({', '.join(['0.5D'] * 29)}) AS q").first()
    assert row.p is None and 0.0 <= row.q <= 1.0


def test_zero_std_feature_drops_out(spark):
    """Spark's StandardScaler maps a constant feature (std 0) to 0.0; the SQL must too, not divide by 0."""
    from udfs.lr_sql import lr_expression

    rng = np.random.default_rng(1)
    params = {"scaler_mean": list(rng.normal(size=29)), "scaler_std": list(rng.uniform(0.5, 2, size=29)),
              "coefficients": list(rng.normal(size=29)), "intercept": -1.25}
    params["scaler_std"][3] = 0.0
    x = rng.normal(size=29)
    sql = lr_expression(params, FEATURES)
    assert "`V4`" not in sql
    values = dict(zip(FEATURES, x))
    row = ", ".join(f"{float(v)!r}D AS `{k}`" for k, v in values.items())
    got = spark.sql(f"SELECT {sql} AS p FROM (SELECT {row})").first().p
    scale = np.array([0.0 if s == 0 else 1.0 / s for s in params["scaler_std"]])
    margin = params["intercept"] + float(np.dot(params["coefficients"], (x - params["scaler_mean"]) * scale))
    assert abs(got - 1 / (1 + np.exp(-margin))) < 1e-12


def test_mismatched_features_refused(spark, models, repo):
    from runner.compile.project import load_project

    schema = dict(load_project(repo).sources["transactions"].schema)
    udfs.register(spark, models["lr"].model_dir, schema)          # the shipped schema fits
    del schema["V14"], schema["Amount"]
    with pytest.raises(RunnerError) as err:
        udfs.register(spark, models["lr"].model_dir, schema)
    assert "V14" in err.value.message and "Amount" in err.value.message
    assert "V1," not in err.value.message

    # fraud_prob takes the card's features, whatever they are: a model fitted on Time instead of
    # Amount scores with Time where the source carries it, and is refused where it does not.
    other = models["out"] / "other_features"
    other.mkdir()
    card = dict(models["lr"].card, features=FEATURES[:-1] + ["Time"])
    (other / "model_card.json").write_text(json.dumps(card))
    schema = dict(load_project(repo).sources["transactions"].schema)
    udfs.register(spark, other, schema)
    p = spark.sql(f"SELECT fraud_prob({', '.join(FEATURES[:-1] + ['Time'])}) AS p "
                  f"FROM (SELECT {', '.join(f'0.5D AS {f}' for f in FEATURES[:-1] + ['Time'])})").first().p
    assert 0.0 <= p <= 1.0
    del schema["Time"]
    with pytest.raises(RunnerError, match="missing from the source schema: Time"):
        udfs.register(spark, other, schema)
    # A card whose features do not match its fitted parameters is refused, naming both counts.
    (other / "model_card.json").write_text(json.dumps(dict(card, features=FEATURES[:-1])))
    with pytest.raises(RunnerError, match="lr parameters have lengths 29, 29, 29; the card lists 28 features"):
        udfs.register(spark, other)


def test_missing_model_folder_refused(spark, tmp_path):
    with pytest.raises(RunnerError) as err:
        udfs.register(spark, tmp_path / "no_such_model")
    assert "no trained model" in err.value.message and "runner train" in err.value.hint
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunnerError, match="model_card.json"):
        udfs.register(spark, tmp_path / "empty")


def _snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_crash_leaves_previous_model_intact(spark, models, monkeypatch):
    out = models["out"]
    # The whole folder, not only the card: the crash below comes after the new pipeline is saved
    # and before the card is written, so a writer saving in place would change pipeline/ only.
    before = _snapshot(models["lr"].model_dir)
    assert "model_card.json" in before and any(k.startswith("pipeline/") for k in before)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "plot_pr_curve", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        training.train(spark, training.load_synthetic(3_000, seed=3), kind="lr", out_dir=out, max_iter=5)
    assert _snapshot(models["lr"].model_dir) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- CLI

def test_cli_train_synthetic_end_to_end(spark, repo, tmp_path):
    """The verb as the CLI parses and prints it, run in this process: `runner train` finds the
    tests' SparkSession running (session_for), so no second JVM starts for it."""
    from click.testing import CliRunner

    from runner.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(repo), "train", "--synthetic", "5000", "--max-iter", "10",
                                      "--out", str(tmp_path)], prog_name="runner")
    assert result.exit_code == 0, f"{result.output[-3000:]}{result.exception!r}"
    out = result.output
    for text in ("duplicate rows", "missing cells", "PR-AUC", "ROC-AUC", "threshold", "precision", "0.95"):
        assert text in out, out
    card = json.loads((tmp_path / "fraud_lr" / "model_card.json").read_text())
    assert card["kind"] == "lr" and card["data"]["rows"] == 5000 and card["data"]["synthetic"]["n"] == 5000
    assert (tmp_path / "fraud_lr" / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_train_needs_data(runner_cmd, repo, tmp_path):
    proc = subprocess.run(runner_cmd + ["--project", str(repo), "train", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--data PATH or --synthetic N" in proc.stderr


def test_csv_audit_counts_and_drops_duplicates(tmp_path):
    from runner.tools.synth import write_csv

    path = write_csv(2_000, tmp_path / "creditcard.csv", seed=9)
    import pandas as pd
    df = pd.read_csv(path)
    pd.concat([df, df.iloc[:25]]).to_csv(path, index=False)
    data = training.load_csv(path)
    report = training.audit(data.frame)
    assert report["rows"] == 2_025 and report["duplicates"] == 25 and report["missing_cells"] == 0
    # Counted over every row read, duplicates included: the 2,000 written plus the 25 copied.
    twice = pd.concat([df["Class"], df["Class"].iloc[:25]])
    assert report["class_counts"] == {"0": int((twice == 0).sum()), "1": int((twice == 1).sum())}
    assert report["class_counts"]["1"] > 0          # the synthetic rows hold frauds, so both keys are tested
    # The loader keeps every row as written (its values, not only its count).
    pd.testing.assert_frame_equal(data.frame.reset_index(drop=True)[df.columns], pd.concat([df, df.iloc[:25]])
                                  .reset_index(drop=True), check_dtype=False)
    import hashlib
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    pd.read_csv(path).drop(columns=["V14"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RunnerError, match="V14"):
        training.load_csv(tmp_path / "bad.csv")
