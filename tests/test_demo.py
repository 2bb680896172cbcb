"""`runner demo` end to end as a user runs it (a subprocess), with tiny settings: it trains,
starts its own broker and the streams, replays, stops by itself once everything is processed,
leaves no process behind and writes the report. Ctrl-C stops everything too."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner.stream import outputs
from runner.tools import processes
from runner.tools.kafka_local import free_port
from runner.tools.report import KPI_PNG, LATENCY_PNG, REPORT_MD, THRESHOLD_PNG
from runner.waits import wait_until


@pytest.fixture
def project_copy(tmp_path, repo) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(repo / "project.yml", root / "project.yml")
    shutil.copytree(repo / "sql", root / "sql")
    return root


def only_run(root: Path) -> Path:
    runs = [p for p in (root / ".runtime" / "demo").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def left_over(run: Path) -> list[str]:
    """Processes the demo started (or their children: same session) that still run."""
    started = set(json.loads((run / "processes.json").read_text()).values())
    return processes.describe(processes.in_sessions(started))


def test_demo_end_to_end(project_copy, tmp_path, runner_cmd):
    """With data/creditcard.csv present (a small file in its layout) the demo trains with
    `runner train --data` on it and replays its first rows."""
    from runner.tools.synth import generate

    (project_copy / "data").mkdir()
    generate(8000, seed=3).to_csv(project_copy / "data" / "creditcard.csv", index=False)
    report_dir = tmp_path / "report"
    t0 = time.monotonic()
    r = subprocess.run([*runner_cmd, "--project", str(project_copy), "demo", "--rows", "2000", "--speedup", "80",
                        "--port", str(free_port()), "--timeout", "420", "--report-dir", str(report_dir),
                        "--warm-up", "2"],
                       capture_output=True, text=True, timeout=480, env={**os.environ, "COLUMNS": "160"})
    seconds = time.monotonic() - t0
    run = only_run(project_copy)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}\napply.log:\n" + \
        (run / "apply.log").read_text(errors="replace")[-3000:]
    out = r.stdout
    assert f"data: {project_copy / 'data' / 'creditcard.csv'} (creditcard.csv layout)" in out
    assert (run / "models" / "fraud_lr" / "model_card.json").exists()
    assert json.loads((run / "models" / "fraud_lr" / "model_card.json").read_text())["data"]["rows"] == 8000
    assert "demo summary (done)" in out and "2,000 of 2,000 rows" in out
    assert "KPIs per minute" in out and "Latest alerts" in out        # the dashboard's last frame
    assert "Traceback" not in out + r.stderr
    assert left_over(run) == []
    # apply reported its states through its status file; it ended as the demo stopped it
    assert json.loads((run / "apply.status.json").read_text())["state"] == "stopped"
    # apply warmed its readers up over scratch records first (runner/stream/warm_up.py)
    assert "warm-up: done in" in (run / "apply.log").read_text(errors="replace")

    # the streams processed every replayed row: the KPI query read one scored event per transaction,
    # and each Parquet sink's query read exactly the rows its folder holds
    progress = run / ".runtime" / "progress"

    def rows_read(query: str) -> int:
        lines = (progress / f"{query}.jsonl").read_text().splitlines()
        return sum(json.loads(line)["numInputRows"] for line in lines)

    assert rows_read("kpi_per_minute__sinks") == 2000
    assert rows_read("fraud_alerts__parquet") == len(outputs.read(run / "output" / "alerts")) > 0
    assert rows_read("rejected_transactions__parquet") == len(outputs.read(run / "output" / "rejected")) == 0
    kpis = outputs.read(run / "output" / "kpis")
    assert len(kpis) >= 10 and kpis["n_txn"].sum() > 1500          # ~20 minutes of event time, last 2 still open

    for name in (THRESHOLD_PNG, KPI_PNG, LATENCY_PNG):
        assert (report_dir / name).stat().st_size > 15_000
    md = (report_dir / REPORT_MD).read_text()
    assert f"{len(kpis)} closed one-minute windows" in md and "`runner demo` run" in md
    # the user's own folders are untouched
    assert not (project_copy / "output").exists() and not (project_copy / "checkpoints").exists()
    print(f"demo took {seconds:.0f}s")


def test_demo_ctrl_c_stops_everything(project_copy, tmp_path, runner_cmd):
    log = tmp_path / "demo.out"
    with open(log, "wb") as f:
        proc = subprocess.Popen([*runner_cmd, "--project", str(project_copy), "demo", "--rows", "500",
                                 "--train-rows", "5000", "--port", str(free_port()),
                                 "--report-dir", str(tmp_path / "report")],
                                stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "160"})
    try:
        def broker_running() -> bool:   # training (Spark) runs now
            assert proc.poll() is None, log.read_text()
            return "broker: running" in log.read_text(errors="replace")

        wait_until(broker_running, timeout_s=120, interval_s=0.5, message=lambda: log.read_text())
        run = only_run(project_copy)
        assert "train" in json.loads((run / "processes.json").read_text())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "data: synthetic creditcard-shaped rows" in text
    assert "demo summary (interrupt)" in text and "Traceback" not in text
    assert left_over(run) == []


def test_settled_once_the_kpis_ran_the_batch_without_rows_that_read_to_the_topic_ends():
    """The KPI query's first batch, over a still empty topic, has no rows; it must not end the demo
    (a CI run stopped after that batch, 0 rows read). Its closing batch, the one with no rows after
    the last rows, ends it, also when it ran before catching up was seen: waiting for one more
    batch cost every demo SETTLE_MAX_S (60 s), as no batch follows it."""
    from runner.tools.demo import Demo

    ends = {"scored_events": {"0": 643, "1": 1357}}
    kpi = [{"rows": 0, "waits_for_watermark": True, "read_to": {"scored_events": {"0": 0, "1": 0}}}]
    # a Parquet reader's repeat filter is state too, but it writes each row at once: no closing batch
    alerts = [{"rows": 5, "waits_for_watermark": False, "read_to": {"fraud_alerts": {"0": 9}}}]
    demo = Demo.__new__(Demo)   # settled() reads only its arguments
    since = time.monotonic()
    assert not demo.settled({"kpi": kpi}, since, ends)
    kpi.append({"rows": 1200, "waits_for_watermark": True, "read_to": {"scored_events": {"0": 400, "1": 800}}})
    kpi.append({"rows": 0, "waits_for_watermark": True, "read_to": {"scored_events": {"0": 400, "1": 800}}})  # mid-run
    kpi.append({"rows": 800, "waits_for_watermark": True, "read_to": ends})
    assert not demo.settled({"kpi": kpi, "alerts": alerts}, since, ends)
    assert not demo.settled({"kpi": kpi + [{"rows": 0, "waits_for_watermark": True, "read_to": ends}]}, since, None)
    kpi.append({"rows": 0, "waits_for_watermark": True, "read_to": ends})            # the batch that moves the watermark on
    assert demo.settled({"kpi": kpi, "alerts": alerts}, since, ends)
    assert demo.settled({"kpi": kpi[:1]}, since - 61, ends)                 # bounded: SETTLE_MAX_S


def test_settled_without_a_closing_batch_when_the_last_rows_do_not_move_the_watermark():
    """Spark runs the batch without rows only when the watermark moves on: when the last rows'
    latest event time minus the delay is not past the watermark their batch used, none comes, the
    windows are written, and the demo must not wait out SETTLE_MAX_S (a CI run's demo test did)."""
    from runner.tools.demo import Demo

    ends = {"scored_events": {"0": 874, "1": 1126}}
    last = {"rows": 6, "waits_for_watermark": True, "read_to": ends,
            "watermark": "2026-11-30T09:34:19.000Z", "max_event_time": "2026-11-30T09:36:19.000Z"}
    kpi = [{"rows": 1994, "waits_for_watermark": True, "read_to": {"scored_events": {"0": 870, "1": 1124}},
            "watermark": "2026-11-30T09:30:00.000Z", "max_event_time": "2026-11-30T09:36:19.000Z"}, last]
    demo = Demo.__new__(Demo)
    since = time.monotonic()
    assert demo.settled({"kpi": kpi}, since, ends, delay_s=120.0)           # 09:36:19 - 2 min is not past 09:34:19
    assert not demo.settled({"kpi": kpi}, since, ends, delay_s=None)        # delay not known: wait for a batch
    assert not demo.settled({"kpi": kpi}, since, ends, delay_s=60.0)        # moves on: a closing batch is coming
    assert not demo.settled({"kpi": kpi[:1]}, since, ends, delay_s=120.0)   # the rows before did not read to the ends
