"""The pipeline with checkpoint_root and output_root on a real HDFS (Hadoop's mini cluster): end to
end against the batch reference, `status` and `audit` reading HDFS, a SIGKILL mid-stream, and a
restart verdict whose reset archives on HDFS. Only public entry points (the CLI, apply_in_process,
plan/reset/preflight) and what they leave on HDFS are used, not query or folder names."""
from __future__ import annotations

import signal
import threading
import time

import pytest
from minihdfs import on_hdfs
from storecheck import START, apply_matches_reference_and_status_and_audit_read_it
from streamkit import StreamProject, apply_in_process, reference_alerts

from runner.compile.fingerprint import INCOMPATIBLE, NEW
from runner.errors import RunnerError
from runner.stream import apply as runtime
from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate
from runner.waits import wait_until


def test_apply_on_hdfs_matches_batch_reference_and_status_and_audit_read_it(spark, hdfs_project, lr_model):
    # On the shared session (no second JVM; the CLI's apply on HDFS is the SIGKILL test's). status and
    # audit stay CLI runs: without a session they read HDFS through a JVM of their own. The same check
    # as on S3 (tests/s3): tests/storecheck.py.
    apply_matches_reference_and_status_and_audit_read_it(spark, hdfs_project, lr_model, rows=3000, seed=41, prefix="h1")


def test_sigkill_mid_stream_on_hdfs_then_restart_loses_nothing(spark, hdfs_project, lr_model, tmp_path):
    sp = hdfs_project
    rows = generate(3000, seed=43)
    head, tail = rows.iloc[:1000], rows.iloc[1000:]
    replay.send(sp.kafka, sp.topic, head, start=START, id_prefix="hk")
    proc = sp.popen("apply", log=tmp_path / "apply1.log")
    alerts_uri = f"{sp.hdfs_base}/output/alerts"
    sender = None
    killed = threading.Event()
    try:
        # Once alerts are committed on HDFS, send the rest while it runs, then kill it mid-flight.
        def committed() -> bool:
            assert proc.poll() is None, (tmp_path / "apply1.log").read_text()[-3000:]
            return not outputs.read(alerts_uri).empty

        wait_until(committed, timeout_s=300, interval_s=0.5, message="apply's first alerts committed to HDFS")
        sender = threading.Thread(target=_send_tail, args=(sp, tail.reset_index(drop=True), killed), daemon=True)
        sender.start()
        time.sleep(4)
        assert sender.is_alive(), "the replay ended before the kill; the test would prove nothing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        killed.set()
        if proc.poll() is None:
            proc.kill()
    if sender:
        sender.join(180)
    partial = len(outputs.read(alerts_uri))

    # Started again from the killed run's checkpoints on HDFS, on the shared session (no second JVM).
    _, result = apply_in_process(spark, sp)
    assert result.exit_code == 0 and result.stopped_by == "available-now", result

    expected = reference_alerts(spark, lr_model, rows, "hk")
    alerts = outputs.read(alerts_uri)
    assert partial < len(alerts)
    assert sorted(alerts["txn_id"]) == sorted(expected)              # nothing lost, nothing twice


def _send_tail(sp, tail, killed: threading.Event) -> None:
    """The rest of the rows, numbered after the first 1,000, at 100/s until apply is killed, then as
    fast as the producer goes (apply is down: nobody reads them until the restart)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=sp.broker.bootstrap, linger_ms=5)
    for i, (key, value) in enumerate(replay.records(tail, start=START, id_prefix="hk")):
        n = 1000 + i
        producer.send(sp.topic, key=f"hk-{n:08d}".encode(), value=value.replace(key, f"hk-{n:08d}".encode()))
        if not killed.is_set():
            time.sleep(0.01)
    producer.flush(60)
    producer.close()


@pytest.fixture(scope="module")
def applied_on_hdfs(spark, broker, hdfs, lr_model, tmp_path_factory) -> StreamProject:
    sp = on_hdfs(StreamProject(tmp_path_factory.mktemp("hdfs_applied") / "project", broker, lr_model), hdfs)
    replay.send(sp.kafka, sp.topic, generate(600, seed=45), start=START, id_prefix="hr")
    plans, result = apply_in_process(spark, sp)
    assert {p.verdict.kind for p in plans} == {NEW}
    assert result.exit_code == 0
    return sp


def test_window_change_on_hdfs_is_refused_and_reset_archives_there_deleting_nothing(spark, applied_on_hdfs):
    sp = applied_on_hdfs
    kpis_uri = f"{sp.hdfs_base}/output/kpis"
    before = outputs.read(kpis_uri)
    assert len(before) > 0
    sp.raw["vars"]["window"]["value"] = "2 minutes"
    sp.write()
    project, manifest = sp.load(), sp.compile()
    refused = {p.spec.model for p in runtime.plan(project, manifest) if p.verdict.kind == INCOMPATIBLE}
    assert refused == {"kpi_per_minute"}
    with pytest.raises(RunnerError, match="--reset kpi_per_minute"):
        runtime.preflight(project, runtime.plan(project, manifest))

    moved = runtime.reset(project, manifest, "kpi_per_minute")
    archive = f"{sp.hdfs_base}/checkpoints_archive/"
    assert moved and all(str(dst).startswith(archive) for _, dst in moved)     # archived on HDFS
    assert all(dst.exists() and not src.exists() for src, dst in moved)
    # Nothing deleted: the archived output holds every row the live one held.
    (_, archived_kpis), = [(s, d) for s, d in moved if str(s) == kpis_uri]
    assert outputs.read(archived_kpis).sort_values("window_start").reset_index(drop=True) \
        .equals(before.sort_values("window_start").reset_index(drop=True))
    assert {p.spec.model for p in runtime.plan(project, manifest) if p.verdict.kind == NEW} >= {"kpi_per_minute"}

    plans, result = apply_in_process(spark, sp)
    assert result.exit_code == 0
    kpis = outputs.read(kpis_uri)
    assert len(kpis) > 0 and ((kpis.window_end - kpis.window_start) == "2min").all()
