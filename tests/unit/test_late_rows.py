"""Which rows a micro-batch drops as late, from its checkpoint alone (runner/stream/late_rows.py): the
batch's offset range and the watermark of the batch before it, compared as Spark does (<=, in
microseconds). No Spark: the offset log entries are written as Spark writes them."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from runner.stream import late_rows

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
MS = int(T0.timestamp() * 1000)


def entry(watermark_ms: int, ends: dict[int, int], topic: str = "scored_events") -> str:
    """An offsets/<N> file: version, batch metadata, one line per source."""
    meta = {"batchWatermarkMs": watermark_ms, "batchTimestampMs": 1764450000000,
            "conf": {"spark.sql.shuffle.partitions": "2"}}
    return "v1\n" + json.dumps(meta) + "\n" + json.dumps({topic: {str(p): o for p, o in ends.items()}})


def test_an_offset_log_entry_is_read_as_spark_writes_it():
    e = late_rows.parse_offset_log(entry(MS, {0: 12, 1: 30}))
    assert e.watermark_ms == MS and e.ends == {"scored_events": {0: 12, 1: 30}}
    two_sources = entry(5, {0: 1}) + "\n" + json.dumps({"other": {"0": 4}})
    assert late_rows.parse_offset_log(two_sources).ends == {"scored_events": {0: 1}, "other": {0: 4}}


def test_batch_n_reads_from_the_ends_of_n_minus_1_and_filters_with_its_watermark():
    previous = late_rows.parse_offset_log(entry(MS, {0: 10, 1: 20}))
    current = late_rows.parse_offset_log(entry(MS + 60_000, {0: 15, 1: 20, 2: 3}))   # partition 2 is new
    scan = late_rows.scan_of(7, "scored_events", previous, current)
    # the watermark batch 7 missed is batch 6's: its own (MS + 60 s) only evicts state
    assert scan.watermark_ms == MS
    assert scan.ranges() == [(0, 10, 15), (2, 0, 3)]          # partition 1 read nothing
    assert scan.can_have_late_rows
    assert json.loads(scan.starting_json()) == {"scored_events": {"0": 10, "2": 0}}
    assert json.loads(scan.ending_json()) == {"scored_events": {"0": 15, "2": 3}}
    first = late_rows.scan_of(0, "scored_events", None, current)
    assert first.watermark_ms == 0 and not first.can_have_late_rows   # batch 0: no watermark yet
    idle = late_rows.scan_of(8, "scored_events", current, current)    # a no-data batch (state eviction)
    assert idle.ranges() == [] and not idle.can_have_late_rows


def test_late_means_at_or_before_the_watermark_to_the_microsecond():
    assert late_rows.is_late(T0, MS)                                   # equal: late (LessThanOrEqual)
    assert late_rows.is_late(T0 - timedelta(minutes=5), MS)
    assert not late_rows.is_late(T0 + timedelta(microseconds=1), MS)
    assert late_rows.is_late(T0.replace(tzinfo=None), MS)             # naive times are UTC, as Spark's are
    assert not late_rows.is_late(None, MS)                             # a NULL event time is never late
    assert not late_rows.is_late(T0, 0) and late_rows.is_late(datetime(1970, 1, 1, tzinfo=timezone.utc), 0)


def test_the_late_rows_of_a_batch_are_those_in_its_range_behind_its_watermark():
    scan = late_rows.LateScan(3, "scored_events", {0: 10, 1: 5}, {0: 14, 1: 7}, MS)
    rows = [
        {"partition": 0, "offset": 9, "event_time": T0 - timedelta(hours=1)},    # batch 2's: not this batch
        {"partition": 0, "offset": 10, "event_time": T0 - timedelta(hours=1)},   # late
        {"partition": 0, "offset": 11, "event_time": T0 + timedelta(seconds=1)},  # on time
        {"partition": 0, "offset": 12, "event_time": T0},                         # late: equal
        {"partition": 0, "offset": 13, "event_time": None},                       # kept by Spark
        {"partition": 0, "offset": 14, "event_time": T0 - timedelta(hours=1)},   # batch 4's
        {"partition": 1, "offset": 5, "event_time": T0 - timedelta(seconds=1)},  # late
        {"partition": 1, "offset": 6, "event_time": T0 - timedelta(seconds=1)},  # late: a repeat of the one
    ]                                                                             # above is late again
    assert [(r["partition"], r["offset"]) for r in late_rows.late_rows(rows, scan)] == [(0, 10), (0, 12), (1, 5),
                                                                                         (1, 6)]


def test_the_scan_comes_from_the_checkpoint_and_its_place_is_kept(tmp_path):
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    (offsets / "4").write_text(entry(MS, {0: 10}))
    (offsets / "5").write_text(entry(MS + 1000, {0: 18}))
    scan = late_rows.scan_for(tmp_path, 5, "scored_events")
    assert (scan.batch_id, scan.ranges(), scan.watermark_ms) == (5, [(0, 10, 18)], MS)
    assert late_rows.scan_for(tmp_path, 6, "scored_events") is None    # not planned yet
    assert late_rows.scan_for(tmp_path, 4, "scored_events") is None    # batch 3's offsets purged: unknown range
    assert late_rows.scanned_through(tmp_path) is None
    late_rows.save_scanned_through(tmp_path, 5)
    assert late_rows.scanned_through(tmp_path) == 5


def test_spark_s_count_is_read_off_every_state_operator():
    progress = {"stateOperators": [{"operatorName": "dedupeWithinWatermark", "numRowsDroppedByWatermark": 3},
                                   {"operatorName": "stateStoreSave", "numRowsDroppedByWatermark": 0}]}
    assert late_rows.dropped_by_watermark(progress) == 3
    assert late_rows.dropped_by_watermark({"stateOperators": []}) == 0


# --------------------------------------------------------------------------- how the output is declared

def test_late_rows_is_an_output_of_the_kpi_query_that_plan_shows_and_reset_archives(repo, tmp_path):
    from projectcopy import copy_project, edit

    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.stream import apply as runtime
    from runner.stream import checkpoints
    from runner.tools.audit import late_rows_locations, parquet_locations

    root = copy_project(repo, tmp_path)
    edit(root, "project.yml", "model: models/fraud_lr", f"model: {repo / 'models' / 'fraud_lr'}")
    project = load_project(root)
    manifest = compile_project(project, write=False)
    plans = runtime.plan(project, manifest)
    late = next(p for p in plans if p.name == "kpi_per_minute__late_rows")
    assert late.group == "kpi_per_minute__sinks" and late.spec.location.endswith("/output/late_transactions")
    # audit reads the KPIs from output/kpis, the late rows from output/late_transactions
    assert parquet_locations(project, manifest)["kpi_per_minute"].endswith("/output/kpis")
    assert late_rows_locations(project, manifest) == {"kpi_per_minute": late.spec.location}

    checkpoint = late.checkpoint
    checkpoints.write_meta(checkpoint, {"query": late.group, "members": {}, "sinks": {}})
    late_rows.save_scanned_through(checkpoint, 41)
    for folder in ("kpis", "late_transactions"):
        (root / "output" / folder / "batch=0000000041").mkdir(parents=True)
    moved = {src.name: dst for src, dst in runtime.reset(project, manifest, "kpi_per_minute")}
    assert {"kpi_per_minute__sinks", "kpis", "late_transactions"} <= set(moved)
    assert (moved["kpi_per_minute__sinks"] / late_rows.RECORD).exists()     # the scan's place goes with them
    assert (moved["late_transactions"] / "batch=0000000041").is_dir()
    assert not (root / "output" / "late_transactions").exists()


def test_late_rows_on_a_model_without_windows_is_refused_where_it_is_set(repo, tmp_path):
    import pytest
    from projectcopy import copy_project, edit

    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.errors import RunnerError

    root = copy_project(repo, tmp_path)
    edit(root, "sql/alerts/fraud_alerts.sql", "{{ config(", "{{ config(late_rows='late_alerts', ")
    with pytest.raises(RunnerError, match="model 'fraud_alerts' sets late_rows, but it is not a windowed") as info:
        compile_project(load_project(root), write=False)
    assert info.value.where.endswith("fraud_alerts.sql")
    edit(root, "sql/alerts/fraud_alerts.sql", "late_rows='late_alerts'", "late_rows='../outside'")
    with pytest.raises(RunnerError, match="late_rows '../outside' must be a relative folder"):
        compile_project(load_project(root), write=False)
