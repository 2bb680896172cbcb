"""SIGKILL `runner apply` mid-stream, start it again: nothing lost, nothing twice in Parquet."""
from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timezone

from streamkit import consume_keys, reference_alerts

from runner import checkpoints, outputs, replay
from runner.synth import generate

START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def test_sigkill_mid_stream_then_restart_loses_nothing(spark, stream_project, lr_model, tmp_path):
    sp = stream_project
    rows = generate(5000, seed=31)
    sender = threading.Thread(target=replay.send, args=(sp.kafka, sp.topic, rows),
                              kwargs={"start": START, "id_prefix": "crash", "rate": 80.0})
    sender.start()
    proc = sp.popen("apply", log=tmp_path / "apply1.log")
    alerts_ckpt = sp.root / "checkpoints" / "stateless__fanout"
    deadline = time.monotonic() + 240
    try:
        # Kill it once some batches are committed, while the replay is still sending.
        while time.monotonic() < deadline and (checkpoints.last_committed_batch(alerts_ckpt) or 0) < 1:
            assert proc.poll() is None, (tmp_path / "apply1.log").read_text()[-3000:]
            time.sleep(0.5)
        assert sender.is_alive(), "the replay ended before the kill; the test would prove nothing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    sender.join(120)
    partial = len(outputs.read(sp.output("alerts")))

    result = sp.cli("apply", "--available-now", "--quiet")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    expected = reference_alerts(spark, lr_model, rows, "crash")
    alerts = outputs.read(sp.output("alerts"))
    assert partial < len(alerts)
    assert sorted(alerts["txn_id"]) == sorted(expected)         # nothing lost, nothing twice
    on_kafka = consume_keys(sp.broker.bootstrap, "fraud_alerts", "crash-")
    assert set(expected) <= set(on_kafka)                       # at-least-once: repeats allowed
