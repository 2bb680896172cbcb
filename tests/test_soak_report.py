"""`make soak`'s pure parts (bench/soak.py), without Spark or a broker: the slope after warm-up and
the flat verdict, reading a samples file an interruption cut, and the report written from one."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from bench import procs, soak
from bench.backlog import KPI_QUERY, ROUTE_QUERY


def test_slope_is_a_least_squares_line_per_hour_over_the_samples_after_warm_up():
    ts = [i * 10.0 for i in range(361)]                                    # an hour, every 10 s
    warm = [5e9 if t < 600 else 1e9 + 2e8 * t / 3600 for t in ts]         # a spike in warm-up, then +200 MB/h
    assert soak.slope_per_hour(ts, warm, after_s=600) == pytest.approx(2e8)
    assert soak.slope_per_hour(ts, warm, after_s=0) < 0                   # the warm-up spike would hide it
    assert soak.slope_per_hour(ts, [None] * 359 + [1, 2], after_s=0) is None   # fewer than 3 values
    gaps = [None if i % 2 else 3.0 * t for i, t in enumerate(ts)]          # samples without a value are skipped
    assert soak.slope_per_hour(ts, gaps, after_s=600) == pytest.approx(3.0 * 3600)


def test_one_sample_rss_spikes_are_found_and_only_those():
    ys = [1.8, 1.8, 3.7, 1.8, 1.9, None, 4.0, 1.9, 2.0, 2.4, 2.5]          # GiB
    cleaned, spikes = soak.without_spikes(ys)
    assert spikes == [2] and cleaned[2] is None and cleaned[6] == 4.0     # next to a gap: not judged
    assert soak.without_spikes([1.0, 1.2, 1.5, 1.9])[1] == []              # steady growth is not a spike
    assert soak.without_spikes([1.8, 1.9, 3.5])[1] == [2]                  # the last sample has one neighbour


def test_heap_minima_per_window_after_warm_up():
    ts = list(range(0, 1200, 10))
    ys = [300 + (t % 300) for t in ts]                                     # a sawtooth restarting every 5 min
    assert soak.window_minima(ts, ys, after_s=600) == [(750.0, 300), (1050.0, 300)]


def test_flat_means_at_most_five_percent_of_the_mean_per_hour():
    assert soak.verdict(4.9, 100.0) == "flat"
    assert soak.verdict(-4.9, 100.0) == "flat"
    assert soak.verdict(5.1, 100.0) == "growing"
    assert soak.verdict(-6.0, 100.0) == "shrinking"
    assert soak.verdict(None, 100.0) == "too few samples"


def _sample(t: float, rss: float, heap: float, rows: int) -> dict:
    return {"t": t, "rss": rss, "rss_jvm": rss * 0.8, "rss_python": rss * 0.2, "heap_after_gc": heap,
            "state": {KPI_QUERY: {"rows": rows, "bytes": rows * 100}},
            "behind": {ROUTE_QUERY: 5, "fraud_alerts__parquet": 0},
            "batch_ms": {"fraud_alerts__parquet": {"n": 10, "mean": 120.0, "max": 300.0}},
            "alerts": 12, "alert_p50": 20.0, "alert_p99": 180.0, "rate": 1990.0, "load1": 3.5}


def _write(path, samples, cut: bool = False) -> None:
    text = "".join(json.dumps(s) + "\n" for s in samples)
    path.write_text(text + ('{"t": 99' if cut else ""))                  # a line the interruption cut


def test_the_report_gives_parameters_rate_achieved_series_verdict_and_the_alert_check(tmp_path):
    samples = [_sample(t, 2e9, 4e8, 300_000) for t in range(10, 1810, 10)]   # 30 minutes, flat
    drained = {**_sample(1830, 9e9, 4e8, 0), "phase": "drain"}                 # after the load: not in the table
    _write(tmp_path / "samples.jsonl", samples + [drained], cut=True)
    assert len(soak.read_samples(tmp_path / "samples.jsonl")) == len(samples) + 1
    meta = {"minutes": 30, "rate": 2000, "every_s": 10, "warmup_min": 10, "achieved": 1987.0, "records": 3_576_600,
            "load_s": 1800.0, "chunk_rates": "min 1,950, median 1,998, max 2,000/s", "end": "ran the full 30 minutes",
            "started": "2026-11-29 23:00", "finished": "2026-11-29 23:35", "machine": "2 cores",
            "check": {"threshold": 0.9, "records": 3_576_600, "expected": 9000, "parquet": 9000, "parquet_distinct": 9000,
                      "missing": 0, "extra": 0, "duplicates": 0, "kafka_missing": 0}}
    text = soak.write_report(tmp_path / "samples.jsonl", meta, tmp_path / "soak.md", tmp_path / "soak.png")
    assert (tmp_path / "soak.md").read_text() == text
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert "30 minutes at 2,000 events/s" in text and "Rate achieved: **1,987 events/s**" in text
    assert "| pipeline RSS (Python + JVM) | 1,907 MiB | 1,907 MiB | 1,907 MiB | 0 MiB |" in text
    assert "Sampled 180 times over 30.0 minutes of load, then 1 more while it drained" in text
    assert "Memory and state after warm-up: **flat**" in text
    assert "**Nothing lost**" in text
    assert "Machine load average (1 min; 2 cores, shared with other work): start 3.50" in text


def test_a_growing_heap_makes_the_verdict_not_flat_and_a_difference_is_reported(tmp_path):
    samples = [_sample(t, 4e9 if t == 1800 else 2e9, 4e8 + 1e8 * t / 3600, 300_000)      # heap +25%/h, an RSS spike
               for t in range(10, 3610, 10)]
    _write(tmp_path / "samples.jsonl", samples)
    meta = {"minutes": 60, "rate": 2000, "every_s": 10, "warmup_min": 10, "end": "**runner apply exited (1)**",
            "check": {"threshold": 0.9, "records": 10, "expected": 5, "parquet": 5, "parquet_distinct": 4,
                      "missing": 1, "extra": 0, "duplicates": 1, "missing_sample": [(0, 7)], "kafka_missing": 0}}
    text = soak.write_report(tmp_path / "samples.jsonl", meta, tmp_path / "soak.md", tmp_path / "soak.png")
    heap_line = next(line for line in text.splitlines() if line.startswith("- driver JVM heap after its last GC"))
    assert "**growing**" in heap_line and "+2" in heap_line                  # ~ +23% of its mean per hour
    assert "Memory and state after warm-up: **not flat**" in text
    assert "leaving out 1 one-sample spike(s) over 1.3x both neighbours (at minute 30.0" in text
    assert "| pipeline RSS (Python + JVM) | 1,907 MiB | 1,907 MiB | 3,815 MiB |" in text
    assert "|   without its one-sample spikes | 1,907 MiB | 1,907 MiB | 1,907 MiB | 0 MiB |" in text
    assert "**Not equal**: 1 reference alerts missing from Parquet, 0 Parquet alerts not in the reference, 1 written twice" in text
    assert "runner apply exited (1)" in text


def test_an_interrupted_soak_without_samples_still_writes_a_report(tmp_path):
    text = soak.write_report(tmp_path / "none.jsonl", {"minutes": 60, "rate": 2000}, tmp_path / "soak.md",
                             tmp_path / "soak.png")
    assert "Sampled 0 times" in text and "not checked" in text and "not known" in text


def test_rss_counts_a_forked_child_that_has_not_exec_d_once_not_twice():
    """The driver JVM starts commands (Hadoop's readlink) by fork then exec; caught in between, the
    child shows its parent's resident pages, which once read as one-sample jumps of a whole JVM."""
    code = ("import os, time\nblock = bytearray(200 * 2**20)\nfor i in range(0, len(block), 4096): block[i] = 1\n"
            "pid = os.fork()\ntime.sleep(30)\nif pid: os.waitpid(pid, 0)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (parent.children() and parent.memory_info().rss > 200 * 2**20):
            time.sleep(0.1)
        child = parent.children()[0]
        assert child.cmdline() == parent.cmdline() and child.memory_info().rss > 200 * 2**20   # psutil: both hold it
        total, _, own = procs.TreeRss(proc.pid).sample()
        assert total == own and own > 200 * 2**20
    finally:
        for p in psutil.Process(proc.pid).children() + [psutil.Process(proc.pid)]:
            p.kill()
        proc.wait(10)
