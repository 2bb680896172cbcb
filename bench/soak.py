"""`make soak`: `runner apply` (all sinks, Real-time Mode, as a user runs it) under a steady load for
SOAK_MINUTES, sampled every 10 s, to see whether memory and state stay flat and nothing is lost.
Writes bench/soak.md and bench/soak.png; the samples go to bench/soak_work/samples.jsonl as they
are taken, so an interrupted soak keeps what it measured (`python -m bench.soak --report-only`
writes the report again from them).

On a broker of its own (bench/soak_work/kafka, a 2-partition topic), with the bench's pieces:
- the load: Kafka's ProducerPerformance (a JVM of its own, bench/workload.produce_paced) at the
  asked rate, one payload file of real records per minute whose event_time is that minute
  (drawn at random by the producer, so records repeat: txn_id is not unique, partition+offset is);
- apply started and watched as bench/latency.Ladder does (status file, RSS of its process tree);
- every 10 s: RSS (runner's Python + the Spark driver JVM), the driver's heap after its last GC
  (jstat -gc), state rows and bytes per stateful query (Spark's progress), records behind,
  batch durations per query, alert latency p50/p99 over the interval (alerts joined to their
  transaction on partition+offset by the soak's own consumer, bench/latency.KafkaProbe), the
  rate the topic actually received, and the machine's load average;
- at the end: the load stops, the pipeline drains, apply gets SIGINT (a clean stop), and the
  Parquet alerts are compared with the batch reference: every payload scored again with the saved
  PipelineModel at the project's threshold (tests/stream/streamkit.reference_alerts, the tests'
  reference), mapped onto the partition+offset of each record the topic holds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import latency, procs, report, workload  # noqa: E402
from bench.backlog import KPI_QUERY, ROUTE_QUERY  # noqa: E402

WORK = REPO / "bench" / "soak_work"
NAME = "soak"                # the run's folder under WORK; its topic is bench_soak
CHUNK_S = 60.0               # one payload file (and one ProducerPerformance) per minute of load
SEED = 5000
FLAT_PER_HOUR = 0.05         # flat: the fitted line moves at most 5% of the series' mean per hour
SPIKE_FACTOR = 1.3           # an RSS sample over 1.3x both its neighbours is a one-sample spike (without_spikes)
STOP_LIMIT_S = 120.0         # SIGINT to exit
DRAIN_LIMIT_S = 900.0        # after the load, until every record is scored (sampling on), then the Parquet alerts

# The series the verdict is about: key in a sample, label.
FLAT_SERIES = {"rss": "pipeline RSS (runner's Python + Spark driver JVM)",
               "heap_after_gc": "driver JVM heap after its last GC (jstat: old + survivor used)",
               "kpi_state_rows": "KPI query state rows"}

HEAP_NOTE = ("Heap after GC is read with `jstat -gc <driver pid>`: old-generation used plus survivor used (OU + "
             "S0U + S1U). jstat reads the JVM's performance counters from shared memory, so sampling it neither "
             "stops the JVM at a safepoint nor forces a collection (`jcmd GC.run` would, and would change what is "
             "measured). With G1, the driver's collector, objects reach the old generation and the survivor spaces "
             "only during a collection pause, so between two collections that sum stays what the last collection "
             "left (apart from humongous objects allocated since, which G1 counts as old): the live heap a leak "
             "would grow. Eden, refilled between collections, is left out.")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- the pure parts

def slope_per_hour(ts_s: list[float], ys: list, after_s: float) -> float | None:
    """Least-squares slope (units per hour) of ys over the samples at or after after_s seconds;
    None with fewer than 3 samples there."""
    pts = [(t, y) for t, y in zip(ts_s, ys) if t >= after_s and y is not None]
    if len(pts) < 3:
        return None
    t = np.array([p[0] for p in pts], dtype=float) / 3600.0
    y = np.array([p[1] for p in pts], dtype=float)
    if np.ptp(t) == 0:
        return None
    return float(np.polyfit(t, y, 1)[0])


def verdict(slope_h: float | None, mean: float | None, limit: float = FLAT_PER_HOUR) -> str:
    """'flat' when the fitted line moves at most `limit` of the mean per hour, else 'growing' or
    'shrinking'; 'too few samples' without a slope."""
    if slope_h is None or mean is None:
        return "too few samples"
    if abs(slope_h) <= limit * abs(mean):
        return "flat"
    return "growing" if slope_h > 0 else "shrinking"


def without_spikes(ys: list, factor: float = SPIKE_FACTOR) -> tuple[list, list[int]]:
    """ys with each one-sample spike (a value over `factor` times both its neighbours) set to None,
    and the spikes' indexes. RSS read that way before bench/procs.py left out a child the driver JVM
    had forked and not yet exec'd: psutil showed it holding all of its parent's resident pages."""
    out, spikes = list(ys), []
    for i, y in enumerate(ys):
        near = [ys[j] for j in (i - 1, i + 1) if 0 <= j < len(ys)]   # the first and last sample have one
        if y is not None and near and None not in near and y > factor * max(near):
            out[i] = None
            spikes.append(i)
    return out, spikes


def read_samples(path: Path) -> list[dict]:
    """The samples of a soak, in order; a line cut by an interruption is left out."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def series(samples: list[dict]) -> dict[str, list]:
    """{series key: one value (or None) per sample}: memory, state, behind, batch durations,
    alert latency, rate and load, flattened from the samples' nested fields."""
    out: dict[str, list] = {}

    def put(key: str, i: int, value) -> None:
        out.setdefault(key, [None] * len(samples))[i] = value

    for i, s in enumerate(samples):
        for key in ("rss", "rss_jvm", "rss_python", "heap_after_gc", "alert_p50", "alert_p99", "alerts", "rate",
                    "load1"):
            put(key, i, s.get(key))
        kpi = (s.get("state") or {}).get(KPI_QUERY) or {}
        put("kpi_state_rows", i, kpi.get("rows"))
        put("kpi_state_bytes", i, kpi.get("bytes"))
        for q, v in (s.get("state") or {}).items():
            if q != KPI_QUERY:
                put(f"state_rows:{q}", i, v.get("rows"))
        for q, v in (s.get("behind") or {}).items():
            put(f"behind:{q}", i, v)
        for q, v in (s.get("batch_ms") or {}).items():
            put(f"batch_ms:{q}", i, v.get("mean"))
            put(f"batch_ms_max:{q}", i, v.get("max"))
    return out


def _stats(ys: list) -> tuple | None:
    vals = [y for y in ys if y is not None]
    return (vals[0], vals[-1], max(vals), float(np.mean(vals))) if vals else None


def _fmt(key: str, v) -> str:
    if v is None:
        return "–"
    if key in ("rss", "rss_jvm", "rss_python", "heap_after_gc", "kpi_state_bytes"):
        return f"{v / 2**20:,.0f} MiB"
    if key.startswith("batch_ms") or key.startswith("alert_p"):
        return f"{v:,.0f} ms"
    if key == "load1":
        return f"{v:.2f}"
    return f"{v:,.0f}"


def _signed(key: str, v) -> str:
    """A slope as _fmt writes it, with its sign; one that rounds to zero has none."""
    if v is None:
        return "–"
    text = _fmt(key, abs(v))
    return text if not any(c in "123456789" for c in text) else ("+" if v > 0 else "-") + text


LABELS = {"rss": "pipeline RSS (Python + JVM)", "rss_jvm": "  of which Spark driver JVM", "rss_python": "  of which runner's Python",
          "heap_after_gc": "driver heap after last GC", "kpi_state_rows": "KPI state rows",
          "kpi_state_bytes": "KPI state memory (RocksDB, progress memoryUsedBytes)", "alert_p50": "alert latency p50 (interval)",
          "alert_p99": "alert latency p99 (interval)", "alerts": "alerts per interval", "rate": "records/s into the topic (interval)",
          "load1": "machine load average (1 min)"}


def label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    kind, _, q = key.partition(":")
    return {"behind": f"records behind: {q}", "batch_ms": f"batch duration mean: {q}",
            "batch_ms_max": f"batch duration max: {q}", "state_rows": f"state rows: {q}"}.get(kind, key)


def warmup_s(meta: dict) -> float:
    return float(meta.get("warmup_min", 10)) * 60


def flat_lines(samples: list[dict], meta: dict) -> tuple[list[str], bool | None]:
    """One line per series the verdict is about, and the verdict: True flat, False not, None unknown."""
    ts = [s["t"] for s in samples]
    cols = series(samples)
    lines, flat = [], True
    for key, text in FLAT_SERIES.items():
        ys = cols.get(key, [])
        if key == "rss":
            ys, spikes = without_spikes(ys)
            if spikes:
                text += (f", leaving out {len(spikes)} one-sample spike(s) over {SPIKE_FACTOR}x both neighbours "
                         f"(at minute {', '.join(f'{ts[i] / 60:.1f}' for i in spikes)}; see the RSS row without them)")
        slope = slope_per_hour(ts, ys, warmup_s(meta))
        st = _stats([y for t, y in zip(ts, ys) if t >= warmup_s(meta)])
        v = verdict(slope, st[3] if st else None)
        if v == "too few samples":
            flat = None if flat is not False else False
        elif v != "flat":
            flat = False
        rel = f" ({100 * slope / st[3]:+.1f}% of its mean per hour)" if slope is not None and st and st[3] else ""
        lines.append(f"- {text}: slope {_signed(key, slope)} per hour{rel}: **{v}**")
        if key == "heap_after_gc":
            lows = window_minima(ts, ys, warmup_s(meta))
            low_slope = slope_per_hour([t for t, _ in lows], [y for _, y in lows], 0)
            if low_slope is not None:
                lines.append(f"  - its 5-minute minima (G1 frees the old generation in mixed collections, so the sum "
                             f"above also holds old garbage until the next one; the minima are nearer the live heap): "
                             f"{', '.join(_fmt(key, y) for _, y in lows)}; slope {_signed(key, low_slope)} per hour "
                             f"({verdict(low_slope, float(np.mean([y for _, y in lows])))}, for context; the verdict "
                             f"above is the line over every sample)")
    return lines, flat


def window_minima(ts: list[float], ys: list, after_s: float, window_s: float = 300.0) -> list[tuple[float, float]]:
    """(window middle, smallest value) per window_s of samples at or after after_s."""
    by: dict[int, list[float]] = {}
    for t, y in zip(ts, ys):
        if t >= after_s and y is not None:
            by.setdefault(int((t - after_s) // window_s), []).append(y)
    return [(after_s + (k + 0.5) * window_s, min(v)) for k, v in sorted(by.items())]


def markdown(all_samples: list[dict], meta: dict, png_name: str) -> str:
    samples = [s for s in all_samples if s.get("phase", "load") == "load"]
    after = all_samples[len(samples):]
    ts = [s["t"] for s in samples]
    cols = series(samples)
    ran_min = (ts[-1] / 60) if ts else 0.0
    w = warmup_s(meta)
    lines = ["# Soak: `runner apply` under a steady load", "",
             f"Run {meta.get('started', '?')} – {meta.get('finished', 'not finished')} UTC by `make soak` (bench/soak.py) "
             f"on {meta.get('machine', '?')}.", "",
             "## Parameters and what happened", "",
             f"- Asked: **{meta.get('minutes')} minutes at {meta.get('rate', 0):,} events/s** "
             f"(`SOAK_MINUTES`, `SOAK_RATE`); samples every {meta.get('every_s', 10):.0f} s; warm-up left out of the "
             f"slopes: the first {w / 60:.1f} minutes{meta.get('warmup_note', '')}.",
             "- `runner apply` with every sink (Kafka alerts, Parquet alerts, rejected records, KPIs to console, "
             "Kafka and Parquet), Real-time Mode for the route query, a subprocess on a broker of its own with "
             "fresh checkpoints and outputs; the load from Kafka's ProducerPerformance (a JVM of its own), one "
             "payload file of 20,000 real records per minute with event_time in that minute.",
             f"- Rate achieved: **{meta['achieved']:,.0f} events/s** ({meta.get('records', 0):,} records in the topic over "
             f"{meta.get('load_s', 0):.0f} s of load; ProducerPerformance's own per-minute rates "
             f"{meta.get('chunk_rates', '–')})." if meta.get("achieved") else "- Rate achieved: not measured.",
             f"- Sampled {len(samples)} times over {ran_min:.1f} minutes of load"
             + (f", then {len(after)} more while it drained" if after else "")
             + f". End: {meta.get('end', 'interrupted (no end recorded)')}."]
    if after and samples:
        route = f"behind:{ROUTE_QUERY}"
        lines.append(f"- Records the route query had not scored: {series(samples).get(route, [None])[-1] or 0:,} when the "
                     f"load ended, {series(after).get(route, [None])[-1] or 0:,} at the last sample of the drain.")
    load = _stats(cols.get("load1", []))
    if load:
        lines.append(f"- Machine load average (1 min; 2 cores, shared with other work): start {load[0]:.2f}, end {load[1]:.2f}, "
                     f"max {load[2]:.2f}, mean {load[3]:.2f}.")
    lines += ["", "## Series", "",
              "Start, end and max over the load (the drain after it is in the plot only); slope: least-squares line "
              f"over the samples after the first {w / 60:.1f} minutes, per hour.", "",
              "| series | start | end | max | slope after warm-up, per hour |", "| --- | --- | --- | --- | --- |"]
    order = [k for k in LABELS if k in cols] + sorted(k for k in cols if k not in LABELS)
    for key in order:
        rows = [(label(key), cols[key])]
        if key == "rss":
            kept, spikes = without_spikes(cols[key])
            if spikes:
                rows.append(("  without its one-sample spikes", kept))
        for name, ys in rows:
            st = _stats(ys)
            if st:
                lines.append(f"| {name} | {_fmt(key, st[0])} | {_fmt(key, st[1])} | {_fmt(key, st[2])} | "
                             f"{_signed(key, slope_per_hour(ts, ys, w))} |")
    flat_text, flat = flat_lines(samples, meta)
    lines += ["", "## Verdict", "",
              f"Flat means the fitted line after warm-up moves at most {FLAT_PER_HOUR:.0%} of the series' mean per hour.", ""]
    lines += flat_text
    lines += ["", "Memory and state after warm-up: **" + {True: "flat", False: "not flat", None: "not known (too few samples "
              "after warm-up)"}[flat] + "**.", ""]
    check = meta.get("check")
    if meta.get("notes"):
        lines += ["## Notes added after the run", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    lines += ["## Nothing lost?", ""]
    if not check:
        lines.append("The alerts were not checked (the soak ended before the check).")
    elif check.get("error"):
        lines.append(f"The check could not run: {check['error']}")
    else:
        lines.append(f"The topic held {check['records']:,} transactions; scored in batch with the saved PipelineModel at "
                     f"threshold {check['threshold']}, {check['expected']:,} of them (by source partition+offset) are alerts. "
                     f"Parquet alerts: {check['parquet']:,} rows, {check['parquet_distinct']:,} distinct source offsets.")
        if check["missing"] == check["extra"] == check["duplicates"] == 0:
            lines.append("\n**Nothing lost**: the Parquet alerts equal the batch reference exactly (no alert missing, none "
                         "extra, none twice).")
        else:
            lines.append(f"\n**Not equal**: {check['missing']:,} reference alerts missing from Parquet, {check['extra']:,} "
                         f"Parquet alerts not in the reference, {check['duplicates']:,} written twice"
                         + (f" (first missing: {check['missing_sample']})" if check.get("missing_sample") else "") + ".")
        if check.get("kafka_missing") is not None:
            lines.append(f"Kafka `fraud_alerts`: {check['kafka_missing']:,} reference alerts missing (at-least-once: repeats "
                         "are allowed there).")
    lines += ["", "## How each series is measured", "",
              "- RSS: psutil over `runner apply`'s process tree (runner's Python, the Spark driver JVM, any other child), "
              "not the soak's own process and not the load generator.",
              f"- {HEAP_NOTE}",
              "- State: the last progress of each stateful query in the interval (stateOperators numRowsTotal, "
              "memoryUsedBytes).",
              "- Records behind: for the route query, records in the source topic not yet scored (topic end minus the "
              "scored events it wrote; its Real-time Mode commits offsets only every 5 minutes); for the other queries, "
              "their topic's end minus the offsets of their last committed batch.",
              "- Batch duration: durationMs.triggerExecution of the batches that ended in the interval, mean and max "
              "(the route query's Real-time Mode batch is its 5-minute checkpoint interval, not a latency).",
              "- Alert latency: each alert written to `fraud_alerts` in the interval, its Kafka timestamp minus its "
              "transaction's, joined on the partition and offset the alert carries.",
              "- Rate: records the topic received in the interval (its end offsets), per second.", "",
              f"![soak series over time]({png_name})", ""]
    return "\n".join(lines)


def plot(samples: list[dict], meta: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = np.array([s["t"] / 60 for s in samples], dtype=float)
    cols = series(samples)

    def line(ax, key, **kw):
        ys, scale = cols.get(key), kw.pop("scale", 1)
        if ys and any(y is not None for y in ys):
            ax.plot(ts, [np.nan if y is None else y * scale for y in ys], label=kw.pop("label", label(key)), **kw)

    def right(ax, key, ylabel, **kw):   # a second series on the panel's right axis
        twin = ax.twinx()
        line(twin, key, **kw)
        twin.set_ylabel(ylabel)
        twin.legend(fontsize=7, loc="lower right")

    fig, axes = plt.subplots(3, 2, figsize=(12, 11), sharex=True)
    (mem, state), (behind, batch), (lat, load) = axes
    g = 1 / 2**30
    for key, style in (("rss", "-"), ("rss_jvm", "--"), ("rss_python", ":"), ("heap_after_gc", "-")):
        line(mem, key, scale=g, ls=style)
    mem.set_ylabel("GiB")
    mem.set_title("memory")
    line(state, "kpi_state_rows", color="tab:purple")
    state.set_ylabel("rows")
    state.set_title("KPI query state")
    right(state, "kpi_state_bytes", "MiB", scale=1 / 2**20, color="tab:orange", label="KPI state MiB (right)")
    for key in sorted(k for k in cols if k.startswith("behind:")):
        line(behind, key, label=key.partition(":")[2])
    behind.set_yscale("symlog", linthresh=10)
    behind.set_title("records behind the topic end")
    for key in sorted(k for k in cols if k.startswith("batch_ms:") and k != f"batch_ms:{ROUTE_QUERY}"):
        line(batch, key, label=key.partition(":")[2])
    batch.set_ylabel("ms")
    batch.set_title("batch duration, mean per interval (micro-batch queries)")
    line(lat, "alert_p99", color="tab:red")
    line(lat, "alert_p50", color="tab:red", alpha=0.4)
    lat.set_yscale("log")
    lat.set_ylabel("ms")
    lat.set_title("alert latency over each interval")
    line(load, "load1", color="black")
    load.set_ylabel("load average (1 min)")
    load.set_title("machine load and input rate")
    right(load, "rate", "records/s", color="tab:green", label="records/s into the topic (right)")
    for ax in axes.flat:
        ax.axvline(warmup_s(meta) / 60, color="grey", lw=0.8, ls="--")
        if meta.get("load_end_min") and ts.size and ts[-1] > meta["load_end_min"]:
            ax.axvline(meta["load_end_min"], color="grey", lw=0.8, ls=":")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("minutes since the load started (dashed: end of warm-up; dotted: end of the load)")
    fig.suptitle(f"make soak: {meta.get('minutes')} min asked at {meta.get('rate', 0):,} events/s "
                 f"(achieved {meta.get('achieved') or 0:,.0f}/s), {meta.get('started', '')} UTC")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def write_report(samples_path: Path, meta: dict, out: Path, png: Path) -> str:
    """bench/soak.md and the PNG from a samples file and the run's facts."""
    samples = read_samples(samples_path)
    if samples:
        plot(samples, meta, png)
    text = markdown(samples, meta, os.path.relpath(png, out.parent))
    out.write_text(text)
    return text


# --------------------------------------------------------------------------- the run

def jstat_gc(pid: int, jstat: str) -> dict[str, float] | None:
    """`jstat -gc pid` as {column: value} (KB for sizes), or None if it could not be read."""
    try:
        out = subprocess.run([jstat, "-gc", str(pid)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    rows = [r.split() for r in out.stdout.splitlines() if r.strip()]
    if out.returncode != 0 or len(rows) < 2 or len(rows[0]) != len(rows[1]):
        return None
    try:
        return {k: float(v) for k, v in zip(rows[0], rows[1]) if v != "-"}
    except ValueError:
        return None


def driver_pid(root_pid: int) -> int | None:
    """The Spark driver JVM under `runner apply`: the java process running SparkSubmit."""
    import psutil
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return None
    for p in children:
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if cmd and Path(cmd[0]).name == "java" and any("SparkSubmit" in c for c in cmd):
            return p.pid
    return None


class Load:
    """ProducerPerformance at `rate` until `until` (monotonic) or stop: one producer per CHUNK_S of
    load, each started on a fixed cadence (every CHUNK_S, up to two alive), so the next one's JVM
    starts while the last one still sends and the rate does not dip between them. Each payload is
    written before its producer starts, event_time from when it will send. Each chunk is appended to
    chunks.jsonl when its producer ends: what the batch reference needs to build its rows again."""

    def __init__(self, bootstrap: str, topic: str, rate: int, until: float, run_dir: Path):
        self.bootstrap, self.topic, self.rate, self.until, self.dir = bootstrap, topic, rate, until, run_dir
        self.stop = threading.Event()
        self.error: str | None = None
        self.chunks_file = run_dir / "chunks.jsonl"
        self.thread = threading.Thread(target=self._run, name="soak-load", daemon=True)
        self._lock = threading.Lock()

    def _send(self, chunk: dict) -> None:
        t0 = time.monotonic()
        rep = workload.produce_paced(self.bootstrap, self.topic, Path(chunk["payload"]), rate=self.rate,
                                     seconds=chunk["span_s"], log=self.dir / f"producer_{chunk['i']:04d}.log")
        Path(chunk["payload"]).unlink(missing_ok=True)
        with self._lock, open(self.chunks_file, "a") as f:
            f.write(json.dumps({**{k: v for k, v in chunk.items() if k != "payload"}, "sent": rep.records,
                                "achieved": rep.rate, "ack_p99_ms": rep.ack_p99_ms, "t0": t0, "t1": time.monotonic()})
                    + "\n")

    def _run(self) -> None:
        startup_s = 2.0   # the producer JVM's start, before it sends: event_time begins after it
        t = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            sending = []
            for i in range(int((self.until - t) / CHUNK_S) + 2):
                seconds = min(CHUNK_S, self.until - t)
                if seconds < 5 or self.stop.is_set() or self.error:
                    break
                start = datetime.now(timezone.utc) + timedelta(seconds=t - time.monotonic() + startup_s)
                chunk = {"i": i, "seed": SEED + i, "n": min(workload.PAYLOAD_MAX, int(self.rate * seconds)),
                         "span_s": seconds, "prefix": f"soak{i:04d}", "start": start.isoformat()}
                try:
                    chunk["payload"] = str(workload.write_payload(
                        self.dir / f"payload_{i:04d}.jsonl", chunk["n"], seed=chunk["seed"], span_s=seconds,
                        prefix=chunk["prefix"], start=start))
                except Exception as e:
                    self.error = f"writing payload {i}: {type(e).__name__}: {e}"
                    break
                if self.stop.wait(max(0.0, t - time.monotonic())):
                    Path(chunk["payload"]).unlink(missing_ok=True)
                    break
                sending.append(pool.submit(self._send, chunk))
                sending = [f for f in sending if not f.done() or self._failed(f)]
                t += seconds
            for f in sending:
                self._failed(f, wait=True)

    def _failed(self, future, wait: bool = False) -> bool:
        """Records a producer's failure (the soak says so and stops); False once it is done."""
        try:
            future.result(timeout=CHUNK_S * 4 + 180 if wait else 0)
        except Exception as e:
            if not isinstance(e, TimeoutError):
                self.error = self.error or f"{type(e).__name__}: {e}"
        return False

    def chunks(self) -> list[dict]:
        return sorted(read_samples(self.chunks_file), key=lambda c: c["i"])


class Sampler:
    """One sample of everything, every `every_s` seconds, appended to samples.jsonl."""

    def __init__(self, ladder, project, out: Path):
        from runner.stream.progress import ProgressTail
        from runner.tools.kafka_local import _java

        self.ladder, self.project, self.out = ladder, project, out
        self.tail = ProgressTail(project.runtime_dir / "progress", row=dict)
        self.jstat = str(Path(_java()).with_name("jstat"))
        self.alerts_pos = ladder.probe.end_offsets(latency.ALERTS_TOPIC)
        self.kafka_alerts: set[tuple[int, int]] = set()   # every source offset seen on fraud_alerts
        self.state: dict[str, dict] = {}
        self.last_src, self.last_t = None, None
        self.driver: int | None = None

    def _behind(self, src_total: int, ends_of) -> dict[str, int]:
        from runner.stream import checkpoints, storage
        scored = sum(ends_of(latency.SCORED_TOPIC).values()) - self.ladder.scored_base
        out = {ROUTE_QUERY: max(0, src_total - self.ladder.source_base - scored)}
        root = storage.path(self.project.checkpoint_root)
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.name == ROUTE_QUERY:
                continue
            committed = checkpoints.committed_offsets(folder)
            out[folder.name] = sum(max(0, end - committed.get(t, {}).get(str(p), 0))
                                   for t in committed for p, end in ends_of(t).items())
        return out

    def _latency(self) -> tuple[int, float | None, float | None]:
        probe = self.ladder.probe
        end = probe.end_offsets(latency.ALERTS_TOPIC)
        first: dict[tuple[int, int], int] = {}
        for rec in probe.read(latency.ALERTS_TOPIC, self.alerts_pos, end, limit_s=30):
            v = json.loads(rec.value)
            key = (int(v["kafka_partition"]), int(v["kafka_offset"]))
            if key not in self.kafka_alerts:   # a repeat of an alert (at-least-once) is not a new latency
                first[key] = min(first.get(key, rec.timestamp), rec.timestamp)
        self.alerts_pos = end
        self.kafka_alerts |= set(first)
        wanted: dict[int, list[int]] = {}
        for p, off in first:
            wanted.setdefault(p, []).append(off)
        src_ts = probe.timestamps(self.ladder.topic, wanted, limit_s=30)
        lat = [first[k] - src_ts[k] for k in first if k in src_ts]
        p50, _, p99, _ = latency.percentiles(lat)
        return len(lat), p50, p99

    def _progress(self) -> dict[str, dict]:
        batches = self.tail.poll()
        self.tail.batches = {}   # what was read is summed here; the tail keeps only its file offsets
        out = {}
        for q, rows in batches.items():
            durations = [(p.get("durationMs") or {}).get("triggerExecution") or 0 for p in rows]
            if durations:
                out[q] = {"n": len(durations), "mean": float(np.mean(durations)), "max": float(max(durations)),
                          "realtime": bool(rows[-1].get("realtime"))}
            ops = next((p["stateOperators"] for p in reversed(rows) if p.get("stateOperators")), None)
            if ops:
                self.state[q] = {"rows": sum(int(o.get("numRowsTotal") or 0) for o in ops),
                                 "bytes": sum(int(o.get("memoryUsedBytes") or 0) for o in ops)}
        return out

    def sample(self, t: float, phase: str = "load") -> dict:
        ends: dict[str, dict[int, int]] = {}

        def ends_of(topic: str) -> dict[int, int]:
            if topic not in ends:
                ends[topic] = self.ladder.probe.end_offsets(topic)
            return ends[topic]

        src_total = sum(ends_of(self.ladder.topic).values())
        rss = self.ladder.rss.sample() or (None, None, None)
        self.driver = self.driver or driver_pid(self.ladder.proc.pid)
        gc = jstat_gc(self.driver, self.jstat) if self.driver else None
        n_alerts, p50, p99 = self._latency()
        batch_ms = self._progress()
        rate = None if self.last_t is None else (src_total - self.last_src) / max(1e-9, t - self.last_t)
        self.last_src, self.last_t = src_total, t
        s = {"t": round(t, 2), "phase": phase, "utc": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S}",
             "rss": rss[0], "rss_jvm": rss[1], "rss_python": rss[2],
             "heap_after_gc": None if gc is None else int((gc.get("OU", 0) + gc.get("S0U", 0) + gc.get("S1U", 0)) * 1024),
             "heap_capacity": None if gc is None else int(sum(gc.get(k, 0) for k in ("S0C", "S1C", "EC", "OC")) * 1024),
             "gc_count": None if gc is None else int(gc.get("YGC", 0) + gc.get("FGC", 0)),
             "state": dict(self.state), "behind": self._behind(src_total, ends_of), "batch_ms": batch_ms,
             "alerts": n_alerts, "alert_p50": p50, "alert_p99": p99, "records": src_total, "rate": rate,
             "load1": os.getloadavg()[0], "load5": os.getloadavg()[1], "load15": os.getloadavg()[2]}
        with open(self.out, "a") as f:
            f.write(json.dumps(s) + "\n")
        return s


def drain(ladder, sampler: Sampler, t0: float, every_s: float) -> float | None:
    """After the load: seconds until every record sent is scored (None: not within DRAIN_LIMIT_S
    or apply exited), sampling on every every_s (phase "drain")."""
    start = time.monotonic()
    for n in range(1, int(DRAIN_LIMIT_S / every_s) + 2):
        if ladder.proc.poll() is not None:
            return None
        try:
            if ladder._processed():
                return time.monotonic() - start
        except RuntimeError:   # apply exited in between
            return None
        time.sleep(max(0.0, min(start + n * every_s, start + DRAIN_LIMIT_S) - time.monotonic()))
        sampler.sample(time.monotonic() - t0, phase="drain")
    return None


def stop_with_sigint(proc: subprocess.Popen) -> str:
    """SIGINT (apply stops its queries and exits), wait; what still runs after STOP_LIMIT_S is
    stopped by procs.stop (SIGTERM, then SIGKILL). Returns how it ended."""
    if proc.poll() is not None:
        return f"had already exited ({proc.returncode})"
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=STOP_LIMIT_S)
        how = f"SIGINT: exited {code}"
    except subprocess.TimeoutExpired:
        how = f"SIGINT: still running after {STOP_LIMIT_S:.0f}s, stopped with SIGTERM/SIGKILL"
    procs.stop(proc, timeout_s=30)
    return how


def check_alerts(project, ladder, chunks: list[dict], model_dir: Path, kafka_alerts: set) -> dict:
    """The Parquet alerts against the batch reference, on source partition+offset."""
    from pyspark.sql import functions as F

    from runner.stream import outputs
    from runner.stream.session import session_for
    from runner.stream.sources import spark_kafka_options
    sys.path.insert(0, str(REPO / "tests" / "stream"))
    from streamkit import reference_alerts

    threshold = float(project.vars["threshold"].value)
    spark = session_for(project, app_name="soak-reference")
    try:
        hits: set[str] = set()
        for c in chunks:
            rows = workload.payload_rows(c["n"], seed=c["seed"], span_s=c["span_s"])
            hits |= reference_alerts(spark, model_dir, rows, c["prefix"], threshold)
        src = (spark.read.format("kafka").options(**spark_kafka_options(project)).option("subscribe", ladder.topic)
               .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
               .select("partition", "offset", F.get_json_object(F.col("value").cast("string"), "$.txn_id").alias("txn_id")))
        ids = spark.createDataFrame([(h,) for h in sorted(hits)] or [("",)], "txn_id string")
        expected = {(r.partition, r.offset) for r in src.join(F.broadcast(ids), "txn_id").select("partition", "offset").collect()}
    finally:
        spark.stop()
    got = outputs.read(str(ladder.parquet.folder), columns=["kafka_partition", "kafka_offset"])
    keys = list(zip(got["kafka_partition"].astype(int).tolist(), got["kafka_offset"].astype(int).tolist()))
    have = set(keys)
    missing = sorted(expected - have)
    records = sum(ladder.probe.end_offsets(ladder.topic).values())   # the topic starts at 0 and keeps 168 h
    return {"threshold": threshold, "records": int(records), "expected": len(expected), "parquet": len(keys),
            "parquet_distinct": len(have), "missing": len(missing), "extra": len(have - expected),
            "duplicates": len(keys) - len(have), "missing_sample": missing[:5],
            "kafka_missing": len(expected - kafka_alerts)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 60),
                    help="minutes of load (default: SOAK_MINUTES or 60)")
    ap.add_argument("--rate", type=int, default=int(os.environ.get("SOAK_RATE") or 2000),
                    help="events/s asked (default: SOAK_RATE or 2000)")
    ap.add_argument("--every-s", type=float, default=10.0, help="seconds between samples (default: %(default)s)")
    ap.add_argument("--warmup-min", type=float, default=10.0,
                    help="minutes left out of the slopes; at most a third of a shorter run (default: %(default)s)")
    ap.add_argument("--model", type=Path, default=None,
                    help="a model folder `runner train` wrote, outside bench/soak_work (default: train one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "soak.md")
    ap.add_argument("--png", type=Path, default=REPO / "bench" / "soak.png")
    ap.add_argument("--work", type=Path, default=WORK, help="emptied at the start (default: bench/soak_work)")
    ap.add_argument("--report-only", action="store_true",
                    help="write the report again from WORK/samples.jsonl and WORK/soak.json, run nothing")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.every_s <= 0:
        ap.error("--minutes, --rate and --every-s must be positive")
    if args.model and not (args.model / "model_card.json").is_file():
        ap.error(f"--model {args.model}: no model_card.json there (a folder `runner train` wrote)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work.resolve()
    meta_file, samples_file = work / "soak.json", work / "samples.jsonl"
    if args.report_only:
        meta = json.loads(meta_file.read_text())
        print(write_report(samples_file, meta, args.out, args.png))
        return 0

    from bench.bench import train_model
    from runner.compile.project import load_project
    from runner.tools import kafka_local

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warm = min(args.warmup_min, args.minutes / 3)
    meta = {"minutes": args.minutes, "rate": args.rate, "every_s": args.every_s, "warmup_min": warm,
            "warmup_note": "" if warm == args.warmup_min else f" (a third of this short run, not {args.warmup_min:g})",
            "started": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}", "machine": report.machine()}

    def save() -> None:
        meta_file.write_text(json.dumps(meta, indent=1, default=str))

    save()
    broker = kafka_local.start(work / "kafka", kafka_local.free_port(), heap="1g")
    say(f"broker on {broker.bootstrap} (data in {work / 'kafka'})")
    ladder = load = sampler = None
    code = 1
    try:
        model_dir = args.model.resolve() if args.model else train_model(work)
        ctx = SimpleNamespace(base=load_project(REPO), work=work, bootstrap=broker.bootstrap, model_dir=model_dir)
        ladder = latency.Ladder(ctx, "realtime", step_s=0, warmup_s=0, sat_p99_ms=0, say=say, name=NAME)
        ladder.start()
        say(f"runner apply started (pid {ladder.proc.pid}, log {ladder.log})")
        sampler = Sampler(ladder, ladder.project, samples_file)
        t0 = time.monotonic()
        load = Load(broker.bootstrap, ladder.topic, args.rate, t0 + args.minutes * 60, ladder.run_dir)
        load.thread.start()
        meta["end"] = f"ran the full {args.minutes:g} minutes"
        for n in range(1, int(args.minutes * 60 / args.every_s) + 1):
            time.sleep(max(0.0, t0 + n * args.every_s - time.monotonic()))
            s = sampler.sample(time.monotonic() - t0)
            if n % max(1, int(60 / args.every_s)) == 0:
                say(f"{s['t'] / 60:5.1f} min: RSS {s['rss'] / 2**30 if s['rss'] else 0:.2f} GiB, heap after GC "
                    f"{(s['heap_after_gc'] or 0) / 2**20:.0f} MiB, KPI state {s['state'].get(KPI_QUERY, {}).get('rows')} rows, "
                    f"behind {s['behind']}, alert p99 {s['alert_p99']}, {s['rate'] or 0:,.0f}/s, load {s['load1']:.1f}")
            if ladder.proc.poll() is not None:
                meta["end"] = (f"**runner apply exited ({ladder.proc.returncode}) after {s['t'] / 60:.1f} minutes**; "
                               f"see {ladder.log}")
                say(meta["end"])
                break
            if load.error:
                meta["end"] = f"**the load failed after {s['t'] / 60:.1f} minutes: {load.error}**"
                say(meta["end"])
                break
        load.stop.set()
        load.thread.join(timeout=CHUNK_S * 2 + 60)
        chunks = load.chunks()
        if chunks:
            meta["records"] = sum(sampler.ladder.probe.end_offsets(ladder.topic).values())
            meta["load_s"] = chunks[-1]["t1"] - chunks[0]["t0"]
            meta["achieved"] = meta["records"] / meta["load_s"]
            rates = sorted(c["achieved"] for c in chunks)
            meta["chunk_rates"] = f"min {rates[0]:,.0f}, median {rates[len(rates) // 2]:,.0f}, max {rates[-1]:,.0f}/s"
        save()
        meta["load_end_min"] = (time.monotonic() - t0) / 60
        if ladder.proc.poll() is None:
            drained = drain(ladder, sampler, t0, args.every_s)
            alerts_end = ladder._settled(latency.ALERTS_TOPIC)
            caught = latency._wait(lambda: latency._parquet_caught_up(ladder.run_dir, alerts_end), 300, 1.0)
            sampler.sample(time.monotonic() - t0, phase="drain")   # reads the alerts of the load's last seconds too
            meta["drain"] = (f"every record scored {drained:.0f}s after the load ended" if drained is not None else
                             f"not every record scored {DRAIN_LIMIT_S:.0f}s after the load ended") + \
                            ("; Parquet alerts caught up" if caught is not None else "; Parquet alerts not caught up")
            say(meta["drain"])
        meta["stop"] = stop_with_sigint(ladder.proc)
        meta["end"] += f"; drained: {meta.get('drain', 'no')}; stop: {meta['stop']}"
        ladder.rss.__exit__(None, None, None)
        meta["peak_rss"] = ladder.rss.peak
        say(f"apply stopped ({meta['stop']}); checking the Parquet alerts against the batch reference")
        save()
        try:
            meta["check"] = check_alerts(ladder.project, ladder, chunks, model_dir, sampler.kafka_alerts)
        except Exception as e:   # reported, not raised: the samples are still written up
            meta["check"] = {"error": f"{type(e).__name__}: {e}"}
        ok = meta["check"].get("missing") == meta["check"].get("extra") == meta["check"].get("duplicates") == 0
        code = 0 if ok and meta["end"].startswith("ran the full") else 1
    except BaseException as e:   # Ctrl-C or a failure of the harness: said in the report, then raised
        meta["end"] = f"**the soak itself stopped: {type(e).__name__}: {e}** ({meta.get('end', 'before the load')})"
        raise
    finally:
        if load is not None:
            load.stop.set()
        if ladder is not None and getattr(ladder, "proc", None) is not None and ladder.proc.poll() is None:
            procs.stop(ladder.proc, timeout_s=30)
        if ladder is not None:
            ladder.probe.close()
        kafka_local.stop(work / "kafka")
        meta["finished"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
        save()
        print(write_report(samples_file, meta, args.out, args.png))
    say(f"done: {args.out}, {args.png} (samples in {samples_file})")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
