"""SIGKILL `runner apply` mid-stream, start it again: nothing lost, nothing twice in Parquet."""
from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timezone

from streamkit import apply_in_process, consume_keys, reference_alerts

from runner.stream import checkpoints, outputs
from runner.tools import replay
from runner.tools.synth import generate
from runner.waits import wait_until

START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def test_sigkill_mid_stream_then_restart_loses_nothing(spark, stream_project, lr_model, tmp_path):
    sp = stream_project
    rows = generate(5000, seed=31)
    head, tail = rows.iloc[:1500], rows.iloc[1500:]
    replay.send(sp.kafka, sp.topic, head, start=START, id_prefix="crash")
    proc = sp.popen("apply", log=tmp_path / "apply1.log")
    # a micro-batch query (the route query commits once per checkpoint interval)
    shared = sp.root / "checkpoints" / "fraud_alerts__parquet"
    sender = None
    killed = threading.Event()
    try:
        # Once the first batch is committed, send the rest while it runs, then kill it mid-flight.
        def running() -> None:
            assert proc.poll() is None, (tmp_path / "apply1.log").read_text()[-3000:]

        wait_until(lambda: running() or checkpoints.last_committed_batch(shared) is not None,
                   timeout_s=300, interval_s=0.5, message="apply's first committed batch")
        # txn_ids continue the head's numbering, so the reference below covers all 5,000 rows.
        tail_ids = tail.reset_index(drop=True)
        sent = {"n": 0}
        sender = threading.Thread(target=_send_tail, args=(sp, tail_ids, sent, killed), daemon=True)
        sender.start()
        # Mid-flight: a few seconds' worth of the tail (400 rows at 100/s) is on the topic while
        # apply runs, and the replay is still sending when the kill comes.
        wait_until(lambda: running() or sent["n"] >= 400, timeout_s=120, interval_s=0.1,
                   message=lambda: f"400 rows of the tail sent ({sent['n']} so far)")
        running()
        assert sender.is_alive(), "the replay ended before the kill; the test would prove nothing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        killed.set()
        if proc.poll() is None:
            proc.kill()
    if sender:
        sender.join(180)
    partial = len(outputs.read(sp.output("alerts")))

    # Started again from the killed run's checkpoints, on the shared session (no second JVM).
    _, result = apply_in_process(spark, sp)
    assert result.exit_code == 0 and result.stopped_by == "available-now", result

    expected = reference_alerts(spark, lr_model, rows, "crash")
    alerts = outputs.read(sp.output("alerts"))
    assert partial < len(alerts)
    assert sorted(alerts["txn_id"]) == sorted(expected)         # nothing lost, nothing twice
    on_kafka = consume_keys(sp.broker.bootstrap, "fraud_alerts", "crash-")
    assert set(expected) <= set(on_kafka)                       # at-least-once: repeats allowed


def _send_tail(sp, tail, sent: dict, killed: threading.Event) -> None:
    """The rest of the rows, numbered after the first 1,500, at 100/s until apply is killed (the rows
    it is reading while it dies), then as fast as the producer goes (apply is down: nobody reads
    them until the restart); counts them in sent["n"]."""
    from kafka import KafkaProducer

    pairs = replay.records(tail, start=START, id_prefix="crash")
    producer = KafkaProducer(bootstrap_servers=sp.broker.bootstrap, linger_ms=5)
    for i, (key, value) in enumerate(pairs):
        n = 1500 + i
        producer.send(sp.topic, key=f"crash-{n:08d}".encode(),
                      value=value.replace(key, f"crash-{n:08d}".encode()))
        sent["n"] = i + 1
        if not killed.is_set():
            time.sleep(0.01)   # the pace of the stream (100 rows/s), not a synchronisation
    producer.flush(60)
    producer.close()
