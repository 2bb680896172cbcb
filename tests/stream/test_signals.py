"""`runner replay` feeds a running `runner apply`; SIGTERM (a supervisor) and SIGINT (Ctrl-C) stop
every query cleanly, exit 0."""
from __future__ import annotations

import signal
import time

import pytest

from runner.stream import checkpoints, outputs


# SIGINT too: pyspark's SparkContext puts its own SIGINT handler in place (cancel every job, raise
# KeyboardInterrupt), which once made Ctrl-C end apply with "Spark failed", exit 1 (seen by make soak).
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_replay_cli_then_a_stop_signal_stops_apply_cleanly(stream_project, tmp_path, sig):
    sp = stream_project
    sent = sp.cli("replay", "--synthetic", "400", "--seed", "41", "--rate", "400", "--start", "2026-04-01T10:00:00Z")
    assert sent.returncode == 0, sent.stderr
    assert "sent 400 to " + sp.topic in sent.stdout and "errors 0" in sent.stdout

    log = tmp_path / "apply.log"
    proc = sp.popen("apply", log=log)
    shared = sp.root / "checkpoints" / "fraud_alerts__parquet"   # a micro-batch query (the route query commits per checkpoint interval)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and checkpoints.last_committed_batch(shared) is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        proc.send_signal(sig)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "stopped (signal)" in text
    assert "started fraud_alerts__parquet" in text
    assert len(outputs.read(sp.output("rejected"))) == 0
    assert (sp.root / ".runtime" / "progress" / "fraud_alerts__parquet.jsonl").exists()
