"""Faults while running: the broker stops mid-stream and comes back; a sink becomes unwritable."""
from __future__ import annotations

import shutil
import threading
from datetime import datetime, timezone

from streamkit import StreamProject, apply_in_process, reference_alerts

from runner.stream import outputs
from runner.tools import kafka_local, replay
from runner.tools.synth import generate
from runner.waits import wait_until

START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def _wait_for(cond, timeout_s: float, what) -> None:
    wait_until(cond, timeout_s=timeout_s, interval_s=0.5, message=what)


def _committed(sp: StreamProject, name: str) -> bool:
    # Whichever layout the sink writes (Spark's _spark_metadata log or batch= folders).
    return bool(outputs.committed_files(sp.output(name)))


def test_broker_restart_mid_stream_loses_nothing(spark, tmp_path, lr_model):
    """Our own broker (not the session one): stop it while the queries run, start it again on the
    same port and data dir. Finding: the queries ride through (Spark's Kafka source and sink
    retry); the run ends cleanly and Parquet alerts equal the batch reference exactly."""
    from runner.stream import apply as runtime

    data = tmp_path / "kafka"
    port = kafka_local.free_port()
    state = kafka_local.start(data, port)
    try:
        sp = StreamProject(tmp_path / "project", state, lr_model)
        rows1, rows2 = generate(1500, seed=31), generate(1500, seed=32)
        replay.send(sp.kafka, sp.topic, rows1, start=START, id_prefix="r1")
        expected = (reference_alerts(spark, lr_model, rows1, "r1")
                    | reference_alerts(spark, lr_model, rows2, "r2"))

        project, manifest = sp.load(), sp.compile()
        plans = runtime.plan(project, manifest)
        runtime.preflight(project, plans)
        stop = threading.Event()
        box = {}
        worker = threading.Thread(target=lambda: box.update(result=runtime.run(
            spark, project, manifest, plans, timeout_s=240, stop_event=stop)))
        worker.start()
        try:
            _wait_for(lambda: _committed(sp, "alerts"), 120, "the first committed alerts batch")
            kafka_local.stop(data)
            # The queries keep polling the dead broker: every running query is seen inside a
            # trigger (asking Kafka for offsets, or the real-time query's long batch) after the stop.
            seen: set[str] = set()

            def every_query_polled_the_dead_broker() -> bool:
                assert worker.is_alive(), box.get("result")    # nothing died while it was down
                active = {q.name: q for q in spark.streams.active}
                seen.update(name for name, q in active.items() if q.status["isTriggerActive"])
                return bool(active) and set(active) <= seen

            _wait_for(every_query_polled_the_dead_broker, 90,
                      lambda: f"a trigger of every query with the broker down (seen: {sorted(seen)})")
            assert worker.is_alive(), box.get("result")
            kafka_local.start(data, port)
            replay.send(sp.kafka, sp.topic, rows2, start=START.replace(hour=9), id_prefix="r2")
            _wait_for(lambda: set(outputs.read(sp.output("alerts"))["txn_id"]) >= expected or not worker.is_alive(),
                      150, "the alerts of the rows sent after the restart")
        finally:
            stop.set()
            worker.join(120)
        result = box["result"]
        # Rode through: the running apply saw the restart and ended only when asked to.
        assert result.exit_code == 0 and result.stopped_by == "signal", result

        # And a second apply finds nothing left behind.
        _, again = apply_in_process(spark, sp)
        assert again.exit_code == 0
        alerts = outputs.read(sp.output("alerts"))
        assert sorted(alerts["txn_id"]) == sorted(expected)     # exactly, none lost, none twice
    finally:
        kafka_local.stop(data)


def test_a_query_that_fails_stops_the_runner_with_its_error(stream_project, tmp_path):
    """The alerts Parquet folder is replaced by a regular file while the runner runs (a trick
    that fails even as root): the runner exits non-zero with the query's error, no hang."""
    sp = stream_project
    replay.send(sp.kafka, sp.topic, generate(800, seed=41), start=START, id_prefix="f1")
    log = tmp_path / "apply.log"
    proc = sp.popen("apply", "--quiet", "--timeout", "300", log=log)
    try:
        _wait_for(lambda: _committed(sp, "alerts") or proc.poll() is not None, 150, "the first alerts batch")
        assert proc.poll() is None, log.read_text()[-3000:]
        shutil.rmtree(sp.output("alerts"))
        sp.output("alerts").write_text("not a folder any more\n")
        replay.send(sp.kafka, sp.topic, generate(800, seed=42), start=START.replace(hour=9), id_prefix="f2")
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 1, text[-3000:]
    # the alerts' Parquet sink is a query of its own, reading the fraud_alerts topic
    assert "error: query fraud_alerts__parquet failed" in " ".join(text.split()), text[-3000:]
    assert "alerts" in text
