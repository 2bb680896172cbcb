"""End to end on the real broker: replay -> `runner apply --available-now` -> Parquet and Kafka
hold exactly what a batch reference of the same rows says."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from streamkit import apply_in_process, consume_keys, reference_alerts

from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def kpi_reference(rows: pd.DataFrame, alert_ids: set[str], prefix: str) -> pd.DataFrame:
    df = rows.copy()
    df["txn_id"] = [f"{prefix}-{i:08d}" for i in range(len(df))]
    df["event_time"] = pd.to_datetime(START.replace(tzinfo=None)) + pd.to_timedelta(df["Time"], unit="s")
    df["is_alert"] = df["txn_id"].isin(alert_ids)
    df["window_start"] = df["event_time"].dt.floor("1min")
    df["tp"] = df["is_alert"] & (df["Class"] == 1)
    g = df.groupby("window_start")
    ref = pd.DataFrame({
        "n_txn": g.size(),
        "n_alert": g["is_alert"].sum(),
        "n_fraud_true": g["Class"].sum(),
        "tp": g["tp"].sum(),
    }).reset_index()
    return ref.astype({"n_txn": "int64", "n_alert": "int64", "n_fraud_true": "int64", "tp": "int64"})


def test_apply_available_now_matches_batch_reference(spark, stream_project, lr_model):
    sp = stream_project
    rows = generate(5000, seed=11)
    prefix = "e2e"
    sent = replay.send(sp.kafka, sp.topic, rows, start=START, id_prefix=prefix)
    assert sent.sent == 5000 and sent.errors == 0

    # On the shared session (no second JVM); the CLI's own lines are test_quiet_cli's and test_secrets'.
    _, result = apply_in_process(spark, sp)
    assert result.exit_code == 0 and result.stopped_by == "available-now", result

    expected = reference_alerts(spark, lr_model, rows, prefix)
    assert len(expected) > 5, "the reference should have alerts for this test to mean anything"
    alerts = outputs.read(sp.output("alerts"))
    assert sorted(alerts["txn_id"]) == sorted(expected)          # exactly, and none twice
    assert set(expected) <= set(consume_keys(sp.broker.bootstrap, "fraud_alerts", prefix + "-"))

    # KPIs: every window the watermark has closed equals the batch reference.
    ref = kpi_reference(rows, expected, prefix).set_index("window_start")
    kpis = outputs.read(sp.output("kpis")).set_index("window_start").sort_index()
    last_event = ref.index.max() + pd.Timedelta(minutes=1)
    closed = ref[ref.index + pd.Timedelta(minutes=1) <= last_event - pd.Timedelta(minutes=2)]
    assert len(kpis) >= len(closed) - 1 > 20
    common = kpis.index.intersection(ref.index)
    assert len(common) == len(kpis)
    for col in ("n_txn", "n_alert", "n_fraud_true", "tp"):
        assert kpis.loc[common, col].astype("int64").tolist() == ref.loc[common, col].tolist(), col
    assert (kpis["fp"] == kpis["n_alert"] - kpis["tp"]).all()

    # Nothing rejected: every valid record was scored.
    assert len(outputs.read(sp.output("rejected"))) == 0


def test_late_rows_are_left_out_of_kpis_and_counted(spark, stream_project):
    sp = stream_project
    rows = generate(600, seed=5)                # ~6 minutes of event time
    replay.send(sp.kafka, sp.topic, rows, start=START, id_prefix="ontime")
    _, first = apply_in_process(spark, sp)
    assert first.exit_code == 0
    before = outputs.read(sp.output("kpis"))

    # 50 rows an hour older than anything seen: far behind the watermark.
    late = generate(50, seed=6)
    late["Time"] = 0.0
    replay.send(sp.kafka, sp.topic, late, start=START.replace(hour=8), id_prefix="late")
    _, second = apply_in_process(spark, sp)
    assert second.exit_code == 0

    after = outputs.read(sp.output("kpis"))
    assert not (after["window_start"] < pd.Timestamp("2026-01-05 09:00")).any()
    assert after["n_txn"].sum() == before["n_txn"].sum()
    from runner.stream.status import query_status
    status = {s.name: s for s in query_status(sp.load())}
    assert status["kpi_per_minute__sinks"].behind == 0
    # ... and kept, exactly: the restarted KPI query's first batch filtered them with the watermark the
    # first run left in its checkpoint (runner/stream/late_rows.py)
    kept = outputs.read(sp.output("late_transactions"))
    assert status["kpi_per_minute__sinks"].late_rows == len(kept) == 50
    assert (kept["event_time"] < pd.Timestamp("2026-01-05 08:01")).all() and (kept["watermark"] > kept["event_time"]).all()
