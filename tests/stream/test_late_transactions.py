"""Every transaction the KPIs leave out behind the watermark is counted exactly and kept
(`late_rows='late_transactions'` on kpi_per_minute; runner/stream/late_rows.py), on a real broker
and real streaming queries:

    scored = transactions in closed KPI windows + late transactions + transactions in open windows

On-time events first (09:00-09:08); once the KPI query's watermark has passed 09:05 (an
offsets/<N> entry with that batchWatermarkMs), transactions of 09:00:00-09:00:29, far behind it,
and a few more on time. The late ones must be
exactly the rows kept, Spark's own per-row count must agree, and `runner status` and `audit` must
say the same number. Then the restart path: the late-rows writer, started over a checkpoint whose
late batches were never written (a crash between Spark's commit and the writer), writes them, and a
batch written before is not written twice.
"""
from __future__ import annotations

import faulthandler
import json
import threading
from datetime import datetime, timezone

import pandas as pd
from streamkit import StreamProject, read_topic

from runner.stream import late_rows, outputs, storage
from runner.tools import replay
from runner.tools.synth import generate
from runner.waits import WaitTimeout, wait_until

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
QUERY = "kpi_per_minute__sinks"
N_ONTIME, N_LATE, N_TAIL = 240, 30, 20


def send(sp: StreamProject, rows: pd.DataFrame, prefix: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=sp.broker.bootstrap, linger_ms=5)
    for key, value in replay.records(rows, start=START, id_prefix=prefix):
        producer.send(sp.topic, key=key, value=value)
    producer.flush(timeout=60)
    producer.close()


def source_offsets(sp: StreamProject) -> dict[str, str]:
    """{txn_id: "partition:offset"} of every transaction sent: the header each scored row carries."""
    return {m.key.decode(): f"{m.partition}:{m.offset}" for m in read_topic(sp.broker.bootstrap, sp.topic)}


def kpi_progress(sp: StreamProject) -> list[dict]:
    f = sp.root / ".runtime" / "progress" / f"{QUERY}.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def wait_for(what: str, check, timeout_s: float) -> None:
    """Bounded; generous, as a loaded machine runs a KPI batch in 15-30 s instead of one."""
    try:
        wait_until(check, timeout_s=timeout_s, interval_s=0.5, message=what)
    except WaitTimeout:
        faulthandler.dump_traceback(all_threads=True)   # where the run's threads were
        raise


def watermark_past(checkpoint, when: datetime) -> bool:
    """A batch's offsets carry a watermark past `when`: every batch after it filters with it or later."""
    folder = storage.path(checkpoint) / "offsets"
    entries = [late_rows.read_entry(checkpoint, int(p.name)) for p in folder.iterdir() if p.name.isdigit()] \
        if folder.is_dir() else []
    return any(e.watermark_ms >= when.timestamp() * 1000 for e in entries)


def scored_rows(spark, sp: StreamProject, checkpoint, schema):
    """Every scored_events row the KPI query read: from its first batch's start to its last batch's end."""
    from runner.stream.apply import routed_columns

    folder = storage.path(checkpoint)
    last = late_rows.read_entry(checkpoint, max(int(p.name) for p in (folder / "offsets").iterdir() if p.name.isdigit()))
    topic = "scored_events"
    # where the query started: Spark's record of its initial offsets ("v1", then the offsets)
    start = json.loads((folder / "sources" / "0" / "0").read_text().splitlines()[-1])[topic]
    raw = (spark.read.format("kafka").option("kafka.bootstrap.servers", sp.broker.bootstrap)
           .option("subscribe", topic).option("includeHeaders", "true")
           .option("startingOffsets", json.dumps({topic: start}))
           .option("endingOffsets", json.dumps({topic: {str(p): o for p, o in last.ends[topic].items()}})).load())
    return routed_columns(raw, schema).select("event_time", "_source_offset").toPandas()


def test_late_transactions_are_counted_exactly_and_kept(spark, stream_project):
    from runner.stream import apply as runtime
    from runner.tools.audit import audit

    sp = stream_project
    base = generate(N_ONTIME + N_LATE + N_TAIL, seed=3).reset_index(drop=True)
    ontime = base.iloc[:N_ONTIME].copy()
    ontime["Time"] = [i * 480.0 / N_ONTIME for i in range(N_ONTIME)]          # 8 minutes of event time
    late = base.iloc[N_ONTIME:N_ONTIME + N_LATE].copy()
    late["Time"] = [float(i) for i in range(N_LATE)]                         # 09:00:00-09:00:29: far behind
    tail = base.iloc[N_ONTIME + N_LATE:].copy()
    tail["Time"] = [480.0 + i for i in range(N_TAIL)]                        # on time

    project, manifest = sp.load(), sp.compile()
    plans = runtime.plan(project, manifest)
    runtime.preflight(project, plans)
    checkpoint = next(p.checkpoint for p in plans if p.group == QUERY)
    kept_in = sp.output("late_transactions")
    stop, result = threading.Event(), {}

    def run():
        result["run"] = runtime.run(spark, project, manifest, plans, timeout_s=900, stop_event=stop, realtime=False)

    thread = threading.Thread(target=run, name="apply", daemon=True)
    thread.start()
    try:
        send(sp, ontime, "lt-on")
        # The late rows must reach a batch after one whose offsets carry a watermark past them (the
        # on-time rows end at 09:08, so it reaches 09:06 once they are read).
        wait_for("the KPI watermark to pass 09:05", lambda: watermark_past(checkpoint, START.replace(minute=5)), 300)
        send(sp, pd.concat([late, tail]), "lt-late")
        n = N_ONTIME + N_LATE + N_TAIL
        wait_for("the KPI query to read every row and the late ones to be kept",
                 lambda: sum(p["numInputRows"] for p in kpi_progress(sp)) >= n
                 and late_rows.count(kept_in) >= N_LATE, 300)
    finally:
        stop.set()
        thread.join(timeout=120)
    assert result["run"].exit_code == 0 and result["run"].stopped_by == "signal", result

    # The rows kept are exactly the late transactions, each once, with the watermark it missed.
    ids = source_offsets(sp)
    expected = {ids[f"lt-late-{i:08d}"] for i in range(N_LATE)}
    kept = outputs.read(kept_in)
    assert sorted(kept["source_offset"]) == sorted(expected)
    assert set(kept.columns) == {"event_time", "Class", "is_alert", "source_offset", "topic_partition",
                                 "topic_offset", "watermark", "batch_id"}
    for batch_id, rows in kept.groupby("batch_id"):
        missed = late_rows.read_entry(checkpoint, int(batch_id) - 1).watermark_ms
        assert (rows["watermark"] == pd.Timestamp(missed, unit="ms")).all()
        assert (rows["event_time"] <= rows["watermark"]).all()
    # Spark's own count, per row, in the de-duplication that filters them first: the same number
    # (the aggregation after it never sees a late row, so drops none).
    dropped = {op["operatorName"]: 0 for op in kpi_progress(sp)[-1]["stateOperators"]}
    for p in kpi_progress(sp):
        for op in p["stateOperators"]:
            dropped[op["operatorName"]] += op["numRowsDroppedByWatermark"]
    assert dropped == {"dedupeWithinWatermark": N_LATE, "stateStoreSave": 0} and len(kept) == N_LATE

    # scored = closed windows + late + open windows. The open windows' rows are those on time
    # whose window ends after the watermark the last batch evicted with (offsets/<last>): Spark
    # emits a window in append mode once that watermark reaches its end. (Spark's state reader,
    # format "statestore", lists them too, but in a trial it returned one shuffle partition's
    # windows only for the last batch; the count of open windows in the progress is checked.)
    schema = runtime.analyse(spark, project, manifest)["kpi_events"]
    scored = scored_rows(spark, sp, checkpoint, schema)
    assert scored["_source_offset"].nunique() == len(scored) == n
    closed = outputs.read(sp.output("kpis"))
    last = max(int(p.name) for p in (storage.path(checkpoint) / "commits").iterdir() if p.name.isdigit())
    evicted = pd.Timestamp(late_rows.read_entry(checkpoint, last).watermark_ms, unit="ms")
    on_time = scored[~scored["_source_offset"].isin(kept["source_offset"])]
    window_end = on_time["event_time"].dt.floor("1min") + pd.Timedelta(minutes=1)
    still_open = on_time[window_end > evicted]
    assert (closed["window_end"] <= evicted).all() and len(closed) >= 4
    assert len(scored) == int(closed["n_txn"].sum()) + len(kept) + len(still_open)
    # ... and those windows are the ones the KPI query holds in its state after its last batch.
    save = next(op for op in kpi_progress(sp)[-1]["stateOperators"] if op["operatorName"] == "stateStoreSave")
    assert save["numRowsTotal"] == window_end[window_end > evicted].nunique() >= 2

    # runner status and audit report the same count.
    status = sp.cli("status", "--format", "json", timeout=120)
    assert status.returncode == 0, status.stderr
    kpi_status = next(q for q in json.loads(status.stdout)["queries"] if q["name"] == QUERY)
    assert kpi_status["late_rows"] == N_LATE and kpi_status["late_output"].endswith("late_transactions")
    assert audit(project, manifest).late_rows == N_LATE

    # Restart: a crash after Spark committed the batches but before the writer wrote them leaves the
    # scan's place behind them and no folder; the writer started over the checkpoint writes them.
    first_late = int(kept["batch_id"].min())
    for folder in list(storage.path(kept_in).iterdir()):
        storage.remove_tree(folder)
    late_rows.save_scanned_through(checkpoint, first_late - 1)
    source = late_rows.LateSource("scored_events", schema, "event_time", {"kafka.bootstrap.servers": sp.broker.bootstrap})
    writer = late_rows.LateRowsWriter(spark, QUERY, checkpoint, str(kept_in), source).start()
    writer.close()
    again = outputs.read(kept_in)
    assert writer.error is None and writer.written == N_LATE
    assert sorted(again["source_offset"]) == sorted(expected)
    assert sorted(again["batch_id"].unique()) == sorted(kept["batch_id"].unique())
    # A batch scanned again (its place lost, its folder committed) is not written twice.
    late_rows.save_scanned_through(checkpoint, first_late - 1)
    replay_writer = late_rows.LateRowsWriter(spark, QUERY, checkpoint, str(kept_in), source).start()
    replay_writer.close()
    assert replay_writer.written == 0 and late_rows.count(kept_in) == N_LATE
    assert late_rows.scanned_through(checkpoint) == last
