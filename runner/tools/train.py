"""Offline training: audit, fit, evaluate, save a model with its card.

The recipe is the lab's, unchanged: pandas audit and drop_duplicates, spark.createDataFrame,
features V1..V28 + Amount, randomSplit([0.8, 0.2], seed=42), fraud weight =
n_normal / n_fraud on the training part, VectorAssembler -> StandardScaler(withMean,
withStd) -> LogisticRegression(weightCol, maxIter=50). `kind="gbt"` swaps the last two
stages for a GBTClassifier (same features and weights; trees need no scaling).

The model is written to a hidden temp folder next to its destination and renamed at the
end, so a crash never leaves half a model under `models/<name>/`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from runner.errors import RunnerError
from runner.files import replace_folder
from runner.tools.synth import COLUMNS
from udfs.card import CARD_FILE, PIPELINE_DIR

LABEL = "Class"
# The features when the caller names none: creditcard.csv's columns but Time and the label
# (V1..V28, Amount). In a project, `runner train` names the source schema's
# (runner/compile/features.py), so the model scores what the stream carries.
LAYOUT_FEATURES = [c for c in COLUMNS if c not in ("Time", LABEL)]
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)
SPLIT = (0.8, 0.2)
SPLIT_SEED = 42
PR_CURVE_FILE = "pr_curve.png"
DEFAULT_NAMES = {"lr": "fraud_lr", "gbt": "fraud_gbt"}


@dataclass
class Dataset:
    frame: pd.DataFrame            # as read, duplicates still in
    source: str                    # a path or "synthetic"
    sha256: str
    hash_of: str
    synthetic: dict | None = None


@dataclass
class TrainResult:
    model_dir: Path
    card: dict
    audit: dict
    pr_curve: tuple[np.ndarray, np.ndarray] = field(repr=False, default=None)


# --------------------------------------------------------------------------- data

def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_frame(df: pd.DataFrame) -> str:
    h = hashlib.sha256(",".join(df.columns).encode())
    h.update(np.ascontiguousarray(df.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()


def load_csv(path: str | Path, features: list[str] | None = None) -> Dataset:
    """A creditcard.csv-layout file, checked for the label and `features` (default: the layout's)."""
    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"no such data file: {path}",
                          hint="pass the Kaggle creditcard.csv with --data, or use --synthetic N")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RunnerError(f"cannot read {path} as CSV: {e}") from None
    check_columns(df, str(path), features or LAYOUT_FEATURES)
    return Dataset(df, str(path), _sha256_file(path), "file bytes")


def load_synthetic(n: int, seed: int = 42) -> Dataset:
    from runner.tools.synth import generate

    if n < 100:
        raise RunnerError(f"--synthetic {n} is too few rows to train on", hint="use at least a few thousand")
    df = generate(n, seed)
    return Dataset(df, "synthetic", _sha256_frame(df), "float64 values of the generated rows",
                   synthetic={"n": n, "seed": seed})


def check_columns(df: pd.DataFrame, where: str, features: list[str]) -> None:
    missing = [c for c in features + [LABEL] if c not in df.columns]
    if missing:
        raise RunnerError(f"data lacks columns: {', '.join(missing)}", where=where,
                          hint="the creditcard.csv layout is Time, V1..V28, Amount, Class; a project's "
                               "model is fitted on its source schema's DOUBLE fields but Time")
    bad = [c for c in features + [LABEL] if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise RunnerError(f"columns are not numeric: {', '.join(bad)}", where=where)
    labels = set(pd.unique(df[LABEL].dropna()))
    if not labels <= {0, 1}:
        raise RunnerError(f"{LABEL} must be 0 or 1, found {sorted(labels)[:5]}", where=where)


def audit(df: pd.DataFrame) -> dict:
    """What the lab prints: rows, duplicate rows, missing cells, class counts and shares."""
    counts = df[LABEL].value_counts()
    n = len(df)
    class_counts = {str(int(k)): int(counts.get(k, 0)) for k in (0, 1)}
    return {
        "rows": n,
        "columns": int(df.shape[1]),
        "duplicates": int(df.duplicated().sum()),
        "missing_cells": int(df.isna().sum().sum()),
        "class_counts": class_counts,
        "class_shares_pct": {k: (round(100.0 * v / n, 4) if n else 0.0) for k, v in class_counts.items()},
    }


# --------------------------------------------------------------------------- fit

def build_pipeline(kind: str, features: list[str], *, max_iter: int = 50, max_depth: int = 5):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier, LogisticRegression
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    assembler = VectorAssembler(inputCols=list(features), outputCol="features_raw")
    if kind == "lr":
        scaler = StandardScaler(inputCol="features_raw", outputCol="features", withMean=True, withStd=True)
        lr = LogisticRegression(featuresCol="features", labelCol=LABEL, weightCol="weight", maxIter=max_iter)
        return Pipeline(stages=[assembler, scaler, lr])
    if kind == "gbt":
        gbt = GBTClassifier(featuresCol="features_raw", labelCol=LABEL, weightCol="weight",
                            maxIter=max_iter, maxDepth=max_depth, seed=SPLIT_SEED)
        return Pipeline(stages=[assembler, gbt])
    raise RunnerError(f"unknown model kind {kind!r}", hint="use --model lr or --model gbt")


def split(spark, df: pd.DataFrame):
    """The lab's split: createDataFrame from the (deduplicated) pandas frame, randomSplit 80/20, seed 42.

    All columns go in, as in the lab: randomSplit sorts each partition by every column before
    sampling, so dropping a column (e.g. Time) would give a different split than the lab's.
    """
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    sdf = spark.createDataFrame(df)
    train, test = sdf.randomSplit(list(SPLIT), seed=SPLIT_SEED)
    return train, test


def add_weights(train, test):
    from pyspark.sql import functions as F

    counts = {int(r[LABEL]): int(r["count"]) for r in train.groupBy(LABEL).count().collect()}
    if counts.get(1, 0) == 0 or counts.get(0, 0) == 0:
        raise RunnerError(f"the training part has class counts {counts}: both classes are needed",
                          hint="use more rows (frauds are ~0.17%)")
    w1 = counts[0] / counts[1]
    weight = F.when(F.col(LABEL) == 1, F.lit(float(w1))).otherwise(F.lit(1.0))
    return train.withColumn("weight", weight), test.withColumn("weight", weight), counts, w1


# --------------------------------------------------------------------------- evaluate

def threshold_table(prob: np.ndarray, label: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    rows = []
    positives = int(label.sum())
    for t in thresholds:
        alert = prob >= t
        alerts = int(alert.sum())
        tp = int((alert & (label == 1)).sum())
        fp = alerts - tp
        precision = tp / alerts if alerts else None
        recall = tp / positives if positives else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0 else 0.0)
        rows.append({"threshold": t, "alerts": alerts, "tp": tp, "fp": fp,
                     "precision": precision, "recall": recall, "f1": f1})
    return rows


def pr_curve(prob: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score, highest score first."""
    order = np.argsort(-prob, kind="mergesort")
    p, y = prob[order], label[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    last = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]   # last index of each distinct score
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / max(int(y.sum()), 1)
    return np.r_[1.0, precision], np.r_[0.0, recall]


def plot_pr_curve(path: Path, precision, recall, table: list[dict], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    ax.step(recall, precision, where="post", label="PR curve")
    for row in table:
        if row["precision"] is not None:
            ax.scatter([row["recall"]], [row["precision"]], s=18, zorder=3)
            ax.annotate(f"{row['threshold']}", (row["recall"], row["precision"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate(model, test) -> tuple[dict, list[dict], np.ndarray, np.ndarray]:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    pred = model.transform(test)
    ev = BinaryClassificationEvaluator(labelCol=LABEL, rawPredictionCol="rawPrediction")
    metrics = {"pr_auc": ev.setMetricName("areaUnderPR").evaluate(pred),
               "roc_auc": ev.setMetricName("areaUnderROC").evaluate(pred)}
    local = (pred.select(vector_to_array("probability")[1].alias("p"), F.col(LABEL).cast("int").alias("y"))
             .toPandas())
    prob = local["p"].to_numpy(dtype=np.float64)
    label = local["y"].to_numpy(dtype=np.int64)
    return metrics, threshold_table(prob, label), prob, label


# --------------------------------------------------------------------------- save

def _lr_params(model) -> dict:
    scaler, lr = model.stages[1], model.stages[2]
    return {
        "scaler_mean": [float(x) for x in scaler.mean.toArray()],
        "scaler_std": [float(x) for x in scaler.std.toArray()],
        "coefficients": [float(x) for x in lr.coefficients.toArray()],
        "intercept": float(lr.intercept),
    }


def _gbt_params(model) -> dict:
    gbt = model.stages[-1]
    return {"num_trees": int(gbt.getNumTrees), "max_depth": int(gbt.getOrDefault("maxDepth")),
            "total_nodes": int(gbt.totalNumNodes), "tree_weights": [float(w) for w in gbt.treeWeights],
            "link": "probability = 1 / (1 + exp(-2 * sum(tree_weight * tree_prediction)))"}


def train(spark, data: Dataset, *, kind: str = "lr", out_dir: str | Path = "models", name: str | None = None,
          max_iter: int = 50, max_depth: int = 5, features: list[str] | None = None,
          on_step=None) -> TrainResult:
    """Audit `data`, fit the `kind` pipeline on `features` (default: LAYOUT_FEATURES), evaluate on
    the test part and save model + card (which records the features, in order)."""
    import pyspark

    step = on_step or (lambda msg: None)
    if kind not in DEFAULT_NAMES:
        raise RunnerError(f"unknown model kind {kind!r}", hint="use --model lr or --model gbt")
    name = name or DEFAULT_NAMES[kind]
    if not name or "/" in name or name.startswith("."):
        raise RunnerError(f"bad model name {name!r}", hint="use a plain folder name such as fraud_lr")
    out_dir = Path(out_dir)
    dest = out_dir / name

    report = audit(data.frame)
    df = data.frame.drop_duplicates()
    features = list(features or LAYOUT_FEATURES)
    check_columns(data.frame, data.source, features)
    if df[features + [LABEL]].isna().any().any():
        raise RunnerError(f"{report['missing_cells']} missing cells in the features or the label",
                          where=data.source, hint="fill or drop them before training")

    step("splitting 80/20 (seed 42)")
    train_df, test_df = split(spark, df)
    # createDataFrame makes one partition per 10,000-row Arrow batch (32 for the demo's 320,000
    # rows), each a task in every one of the optimizer's ~50 passes. Coalescing after the split
    # keeps the lab's split (which rows land in each part) and only regroups the fit's sums.
    parts = max(1, spark.sparkContext.defaultParallelism)
    train_df, test_df = train_df.coalesce(parts).cache(), test_df.coalesce(parts).cache()
    try:
        train_w, test_w, train_counts, w1 = add_weights(train_df, test_df)
        test_counts = {int(r[LABEL]): int(r["count"]) for r in test_df.groupBy(LABEL).count().collect()}
        step(f"fitting {kind} on {sum(train_counts.values()):,} rows (fraud weight {w1:.2f})")
        model = build_pipeline(kind, features, max_iter=max_iter, max_depth=max_depth).fit(train_w)
        step("evaluating on the test part")
        metrics, table, prob, label = evaluate(model, test_w)
    finally:
        train_df.unpersist()
        test_df.unpersist()
    precision, recall = pr_curve(prob, label)

    card = {
        "name": name,
        "kind": kind,
        "card_version": 1,
        "features": features,
        "label": LABEL,
        "pipeline": PIPELINE_DIR,
        "pr_curve": PR_CURVE_FILE,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "pyspark_version": pyspark.__version__,
        "data": {"source": data.source, "sha256": data.sha256, "hash_of": data.hash_of,
                 "synthetic": data.synthetic, **report, "rows_after_dedup": int(len(df))},
        "split": {"fractions": list(SPLIT), "seed": SPLIT_SEED,
                  "train_rows": int(sum(train_counts.values())), "test_rows": int(sum(test_counts.values())),
                  "train_class_counts": {str(k): v for k, v in sorted(train_counts.items())},
                  "test_class_counts": {str(k): test_counts.get(k, 0) for k in (0, 1)}},
        "class_weight": {"0": 1.0, "1": w1},
        "params": {"maxIter": max_iter, **({"maxDepth": max_depth} if kind == "gbt" else
                                           {"standardScaler": "withMean, withStd"})},
        "metrics": {**metrics, "test_frauds": int(label.sum()), "test_rows": int(len(label))},
        "threshold_table": table,
    }
    card[kind] = _lr_params(model) if kind == "lr" else _gbt_params(model)

    step(f"saving to {dest}")
    with replace_folder(dest) as tmp:   # the old model stays whole until the new one is complete
        model.write().save(str(tmp / PIPELINE_DIR))
        plot_pr_curve(tmp / PR_CURVE_FILE, precision, recall, table,
                      f"{name} ({kind}): PR-AUC {metrics['pr_auc']:.4f}, ROC-AUC {metrics['roc_auc']:.4f}")
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return TrainResult(dest, card, report, (precision, recall))
