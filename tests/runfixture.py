"""A small finished run on disk, in the formats `runner apply` leaves behind: committed Parquet
sinks (with Spark's _spark_metadata log), per-batch progress logs and a model card. For the
report and dashboard tests, which read files only."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 5, 9, 0)

# A card as `runner train` writes it (compile checks its features against the schema): the
# features of a model trained on the shipped schema, its DOUBLE fields but Time, in order.
FEATURES = [f for f, t in yaml.safe_load((REPO / "project.yml").read_text())["sources"]["kafka"]["transactions"]
            ["schema"].items() if t == "DOUBLE" and f != "Time"]
CARD = {
    "name": "fraud_lr", "kind": "lr", "data": {"source": "synthetic"}, "features": FEATURES,
    "lr": {"scaler_mean": [0.0] * len(FEATURES), "scaler_std": [1.0] * len(FEATURES),
           "coefficients": [0.1] * len(FEATURES), "intercept": -3.0},
    "metrics": {"pr_auc": 0.81, "roc_auc": 0.97},
    "threshold_table": [
        {"threshold": t, "alerts": a, "tp": tp, "fp": a - tp, "precision": tp / a, "recall": tp / 40,
         "f1": 2 * tp / (a + 40)}
        for t, a, tp in ((0.5, 80, 36), (0.7, 50, 33), (0.8, 40, 31), (0.9, 30, 27), (0.95, 22, 21))
    ],
}


def write_sink(folder: Path, frame: pd.DataFrame, batches: int = 2) -> None:
    """Parquet files plus the file-sink log that says which are committed; one uncommitted leftover."""
    folder.mkdir(parents=True)
    log = folder / "_spark_metadata"
    log.mkdir()
    parts = [frame.iloc[i::batches] for i in range(batches)]
    for batch, part in enumerate(parts):
        f = folder / f"part-{batch:05d}.snappy.parquet"
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), f)
        entry = {"path": f.as_uri(), "size": f.stat().st_size, "isDir": False, "modificationTime": 0,
                 "blockReplication": 1, "blockSize": 1, "action": "add"}
        (log / str(batch)).write_text("v1\n" + json.dumps(entry) + "\n")
    # a crashed batch's file: not in the log, so never read
    pq.write_table(pa.Table.from_pandas(frame.head(1), preserve_index=False), folder / "part-99999.snappy.parquet")


def progress_line(name: str, batch: int, at: datetime, rows: int, ms: int, late: int = 0) -> str:
    return json.dumps({"name": name, "batchId": batch, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                       "numInputRows": rows, "processedRowsPerSecond": rows / (ms / 1000),
                       "durationMs": {"triggerExecution": ms},
                       "stateOperators": [{"numRowsDroppedByWatermark": late}] if name.startswith("kpi") else []})


def make_run(root: Path) -> Path:
    """A project folder (the shipped project.yml and sql/) with a finished run's files."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "sql", root / "sql")
    raw = yaml.safe_load((REPO / "project.yml").read_text())
    raw["model"] = "models/fraud_lr"
    (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    model = root / "models" / "fraud_lr"
    model.mkdir(parents=True)
    (model / "model_card.json").write_text(json.dumps(CARD))

    windows = [START + timedelta(minutes=i) for i in range(12)]
    kpis = pd.DataFrame({
        "window_start": windows, "window_end": [w + timedelta(minutes=1) for w in windows],
        "n_txn": [100 + i for i in range(12)], "n_alert": [i % 3 for i in range(12)],
        "n_fraud_true": [1 if i % 4 == 0 else 0 for i in range(12)],
        "tp": [1 if i in (0, 8) else 0 for i in range(12)],
    })
    kpis["fp"] = kpis["n_alert"] - kpis["tp"]
    kpis["precision"] = [tp / a if a else None for tp, a in zip(kpis["tp"], kpis["n_alert"])]
    kpis["recall"] = [tp / f if f else None for tp, f in zip(kpis["tp"], kpis["n_fraud_true"])]
    write_sink(root / "output" / "kpis", kpis)

    alerts = pd.DataFrame({
        "txn_id": [f"fx-{i:08d}" for i in range(10)],
        "event_time": [START + timedelta(seconds=37 * i) for i in range(10)],
        "Amount": [12.5 * (i + 1) for i in range(10)], "Class": [1 if i in (0, 6) else 0 for i in range(10)],
        "fraud_prob": [0.9 + i / 200 for i in range(10)], "is_alert": [True] * 10,
        "kafka_partition": [0] * 10, "kafka_offset": list(range(10)),
    })
    write_sink(root / "output" / "alerts", alerts)
    write_sink(root / "output" / "rejected", pd.DataFrame({"reason": ["malformed_json", "missing_txn_id",
                                                                      "malformed_json"], "raw_value": ["x", "y", "z"]}))

    # the KPIs' late rows (config late_rows), committed as runner/stream/batches.py does: batch 7
    # kept two, and a crashed attempt left a temporary folder that is never read
    late = pd.DataFrame({"event_time": [START, START + timedelta(seconds=5)], "Class": [0, 1],
                         "is_alert": [False, True], "source_offset": ["0:3", "1:8"], "topic_partition": [0, 1],
                         "topic_offset": [40, 41], "watermark": [START + timedelta(minutes=4)] * 2,
                         "batch_id": [7, 7]})
    for folder in ("batch=0000000007", "_tmp_batch=0000000008_0badcafe"):
        (root / "output" / "late_transactions" / folder).mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(late, preserve_index=False),
                       root / "output" / "late_transactions" / folder / "part-00000.snappy.parquet")

    progress = root / ".runtime" / "progress"
    progress.mkdir(parents=True)
    t0 = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    for name in ("fraud_alerts__parquet", "kpi_per_minute__parquet"):
        lines = [progress_line(name, b, t0 + timedelta(seconds=3 * b), 0 if b % 5 == 4 else 200,
                               30000 if b == 0 else 800 + 40 * b, late=2 if b == 7 else 0) for b in range(20)]
        (progress / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return root
