"""`runner demo`: one command from a fresh clone to live fraud alerts, then a report.

Orchestration only. Every run gets its own folder, .runtime/demo/<time>/, holding a
generated project.yml (the project's sql/ and vars; its own broker, model, checkpoints,
outputs and progress logs), so the demo never touches a user's own runs. In order:

1. train `runner train` (data/creditcard.csv if it exists, else synthetic rows) in a
   subprocess, while a fresh local broker starts (port 9092, or a free one if taken);
2. start `runner apply` in a subprocess, its output and Spark's log in apply.log; it reports
   "started" or its error in apply.status.json (`--status-file`);
3. replay the rows at a speed-up while the live dashboard shows what the streams commit;
4. once every query's committed offsets reach the end of the topic, stop apply (SIGTERM,
   its queries stop cleanly) and the broker; the same on Ctrl-C;
5. print a summary and write the report (output/report/).

Its parts: demo_runs.py (run folders, the generated project.yml), demo_view.py (the header
and the summary), processes.py (starting and stopping processes), dashboard.py (the live view).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from runner.compile.vartypes import duration_seconds
from runner.errors import RunnerError
from runner.stream import run_status
from runner.stream.progress import parse_time
from runner.tools import demo_view, processes
from runner.tools.demo_runs import new_run_dir, pick_port, write_demo_project
from runner.tools.kafka_local import tail

DEFAULT_ROWS = 10000
DEFAULT_REPLAY_S = 90.0       # the automatic speed-up replays the rows in about this long
# Synthetic rows to train on: the lab's 80/20 split must leave >= 100 frauds (~0.17% of rows) in the
# test part, or the threshold table and PR curve rest on a handful of cases (20,000 rows left 3).
# 320,000 rows (about the real file's 284,807) leave 100+ (tests/model/test_demo_training_size.py).
SYNTHETIC_TRAIN_ROWS = 320_000
TRAIN_SEED = 7                # the synthetic training rows differ from the replayed ones (seed 42)
START_TIMEOUT_S = 240.0       # apply: Spark up, the warm-up run and every query started
# Batches of the micro-batch queries over scratch records before the first row (`runner apply
# --warm-up`, runner/stream/warm_up.py): ~30 s on 2 cores, and the demo's batches from its first
# rows on take what they took a minute later without it; 40 did no better (README "Benchmarks").
WARM_UP_BATCHES = 20
STOP_TIMEOUT_S = 90.0
SETTLE_MAX_S = 60.0           # caught up: how long to wait at most for the KPIs' closing batch
ROUTE_QUIET_S = 20.0          # the route query's topics not growing this long: drained (caught_up)


@dataclass
class DemoOptions:
    rows: int = DEFAULT_ROWS
    speedup: float | None = None         # None: replay in about DEFAULT_REPLAY_S
    train_rows: int = SYNTHETIC_TRAIN_ROWS
    port: int = 9092
    timeout_s: float = 900.0             # the whole demo; past it, everything stops and it exits 1
    refresh_s: float = 1.0
    report_dir: Path | None = None       # default: output/report in the project
    data: Path | None = None             # default: data/creditcard.csv if it exists
    warm_up: int = WARM_UP_BATCHES       # apply --warm-up; 0: none


@dataclass
class DemoResult:
    exit_code: int
    stopped_by: str                      # 'done', 'interrupt', 'timeout', 'error'
    run_dir: Path
    seconds: float
    report: object | None = None
    phases: dict = field(default_factory=dict)
    error: str | None = None


class _Stop(Exception):
    """Raised inside the replay's progress callback to end it early."""


def _runner_exe() -> list[str]:
    exe = Path(sys.executable).with_name("runner")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]


def _error_line(log: Path) -> str:
    """The runner's own `error: ...` line from a log (Spark's stack traces around it left out)."""
    lines = tail(log, 400).splitlines()
    ours = [line for line in lines if line.startswith("error: ")]
    return ours[-1][len("error: "):] if ours else "\n" + "\n".join(lines[-8:])


def stop_process(proc: subprocess.Popen | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM a process the demo started, then SIGKILL what is left of its session (runner/tools/processes.py)."""
    processes.stop(proc, timeout_s)


def micro_batch_queries(project, manifest) -> set[str]:
    """The streaming queries (checkpoint folder names) that run micro-batches, i.e. all but those
    in Spark's Real-time Mode, whose offsets are committed once per checkpoint interval."""
    from runner.stream.apply import plan

    plans = plan(project, manifest)
    realtime = {p.checkpoint.name for p in plans
                if (p.spec.sink.get("trigger") or manifest.model(p.spec.model).config.trigger) == "realtime"}
    return {p.checkpoint.name for p in plans} - realtime


def watermark_delay_s(manifest) -> float | None:
    """The shortest watermark delay of the models, in seconds (None: none, or not "N unit"). The
    shortest: one longer than a query's own could take its last batch for final while one more is
    coming; a shorter one at worst waits out SETTLE_MAX_S."""
    try:
        delays = [duration_seconds(str(m.config.watermark["delay"])) for m in manifest.models if m.config.watermark]
    except (ValueError, KeyError):
        return None
    return min(delays) if delays else None


class Demo:
    def __init__(self, project, opts: DemoOptions, console: Console):
        self.project = project
        self.opts = opts
        self.console = console
        self.t0 = time.monotonic()
        self.phases: dict[str, float] = {}
        self.run_dir: Path | None = None
        self.broker_dir: Path | None = None
        self.train_proc: subprocess.Popen | None = None
        self.apply_proc: subprocess.Popen | None = None
        self.replay_thread: threading.Thread | None = None
        self.replay_stop = threading.Event()
        self.sent = 0
        self._route_ends, self._route_since = None, 0.0   # caught_up(): the route topics' ends, since when
        self.replay_summary = None
        self.replay_error: str | None = None
        self.demo_project = None
        self.source_text = ""

    # ------------------------------------------------------------------ steps

    def _mark(self, phase: str, since: float) -> None:
        self.phases[phase] = time.monotonic() - since

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
        with open(log, "ab") as out:
            proc = subprocess.Popen([*_runner_exe(), "--project", str(self.run_dir), *args],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)  # Ctrl-C reaches the demo only
        self._record(args[0], proc.pid)
        return proc

    def _record(self, name: str, pid: int) -> None:
        """run_dir/processes.json: what the demo started (each in its own session), for checks."""
        import json
        f = self.run_dir / "processes.json"
        known = json.loads(f.read_text()) if f.exists() else {}
        known[name] = pid
        f.write_text(json.dumps(known))

    def prepare(self) -> None:
        from runner.compile.project import load_project
        from runner.stream.kafka_clients import ensure_topics
        from runner.tools import kafka_local

        data = self.opts.data or (self.project.root / "data" / "creditcard.csv")
        use_csv = data.is_file()
        if self.opts.data and not use_csv:
            raise RunnerError(f"no such data file: {data}",
                              hint="put the Kaggle creditcard.csv there, or leave --data out")
        self.data = data if use_csv else None
        self.source_text = (f"{data} (creditcard.csv layout)" if use_csv else
                            f"synthetic creditcard-shaped rows (no {data} found)")
        self.run_dir = new_run_dir(self.project)
        port = pick_port(self.opts.port)
        bootstrap = f"127.0.0.1:{port}"
        write_demo_project(self.project, self.run_dir, bootstrap)
        self.demo_project = load_project(self.run_dir)
        c = self.console
        c.print(f"[bold]runner demo[/]: run folder {self.run_dir}")
        c.print(f"data: {self.source_text}")
        if port != self.opts.port:
            c.print(f"port {self.opts.port} is taken; the demo's broker uses {port}")

        t = time.monotonic()
        model_name = self.demo_project.model_path.name
        train_args = ["train", "--out", str(self.demo_project.model_path.parent), "--name", model_name]
        train_args += (["--data", str(self.data)] if self.data else
                       ["--synthetic", str(self.opts.train_rows), "--seed", str(TRAIN_SEED)])
        self.train_proc = self._spawn(train_args, self.run_dir / "train.log")
        rows = "creditcard.csv" if self.data else f"{self.opts.train_rows:,} synthetic rows"
        with c.status(f"training the model on {rows} "
                      f"(log: {self.run_dir / 'train.log'}) and starting the broker on {bootstrap}"):
            self.broker_dir = self.run_dir / "kafka"
            state = kafka_local.start(self.broker_dir, port)
            self._record("broker", state.pid)
            ensure_topics(self.demo_project.target.kafka_options(), self.demo_project.topics)
            c.print(f"broker: running on {bootstrap} (data in {self.broker_dir})")
            try:
                code = self.train_proc.wait(timeout=max(1.0, self._left()))
            except subprocess.TimeoutExpired:
                raise RunnerError("training did not finish within the demo's time limit",
                                  where=str(self.run_dir / "train.log")) from None
        if code != 0:
            raise RunnerError(f"training failed (exit {code}): {_error_line(self.run_dir / 'train.log')}",
                              where=str(self.run_dir / "train.log"))
        self._mark("train + broker", t)
        card = self._card()
        pr_auc = (card.get("metrics") or {}).get("pr_auc")
        c.print(f"model: {model_name} trained in {self.phases['train + broker']:.0f}s"
                + (f", PR-AUC {pr_auc:.3f} on its test part" if pr_auc is not None else ""))

    def _card(self) -> dict:
        import json
        return json.loads((self.demo_project.model_path / "model_card.json").read_text())

    def _left(self) -> float:
        return self.opts.timeout_s - (time.monotonic() - self.t0)

    def start_apply(self) -> None:
        self.apply_log = self.run_dir / "apply.log"
        # apply says "started", or its error, in this file (runner/stream/run_status.py); its log
        # is for people.
        self.apply_status = self.run_dir / "apply.status.json"
        self.apply_proc = self._spawn(["apply", "--quiet", "--status-file", str(self.apply_status),
                                       "--warm-up", str(self.opts.warm_up)], self.apply_log)
        self.apply_started_at = time.monotonic()

    def apply_started(self) -> bool:
        state = run_status.read(self.apply_status)
        return state is not None and state["state"] == run_status.STARTED

    def check_apply(self) -> None:
        if self.apply_proc and self.apply_proc.poll() is not None:
            state = run_status.read(self.apply_status) or {}
            why = state.get("error") or f"no error reported; last lines of its log:\n{tail(self.apply_log, 8)}"
            raise RunnerError(f"`runner apply` exited with code {self.apply_proc.returncode}: {why}",
                              where=str(self.apply_log))

    def start_replay(self) -> None:
        from runner.tools import replay

        rows, prefix = replay.load_rows(str(self.data) if self.data else None,
                                        None if self.data else self.opts.rows, seed=42, limit=self.opts.rows)
        self.rows = rows
        span = float(rows["Time"].iloc[-1] - rows["Time"].iloc[0]) if len(rows) > 1 else 0.0
        self.speedup = self.opts.speedup or max(1.0, span / DEFAULT_REPLAY_S)
        self.event_span_s = span
        project = self.demo_project
        options = project.target.kafka_options()
        topic = project.sources["transactions"].topic

        def progress(n: int) -> None:
            self.sent += n
            if self.replay_stop.is_set():
                raise _Stop()

        def work() -> None:
            try:
                with contextlib.suppress(_Stop):  # asked to stop: the summary stays unset
                    self.replay_summary = replay.send(options, topic, rows, id_prefix=f"demo-{prefix}",
                                                      speedup=self.speedup, on_progress=progress)
            except Exception as e:  # shown by the main thread, which stops everything
                self.replay_error = f"{type(e).__name__}: {e}"

        self.replay_started_at = time.monotonic()
        self.replay_thread = threading.Thread(target=work, name="demo-replay", daemon=True)
        self.replay_thread.start()

    def caught_up(self) -> bool:
        """Every micro-batch query's committed offsets are at the end of the source topic. A query in
        Spark's Real-time Mode commits once per checkpoint interval (minutes) while its records flow
        through at once, so it is not waited for; the Parquet alerts show what it processed."""
        from runner.stream import topology
        from runner.stream.status import end_offsets, query_status

        rows = {r.name: r for r in query_status(self.demo_project)}
        if not (self.waited_for <= set(rows) and all(rows[q].behind == 0 for q in self.waited_for)):
            return False
        # The route query in Real-time Mode commits once per checkpoint interval: it has drained
        # when the topics it writes stop growing while their readers are caught up. Unchanged over
        # two checks is not enough: under load its tasks may not have written anything yet. Each
        # replayed row leaves it in one of its topics (scored or rejected), so they must also hold
        # at least as many records as were sent; a project whose routes drop rows is taken as
        # drained once they have not grown for ROUTE_QUIET_S.
        route = topology.route_plan(self.manifest)
        ends = end_offsets(self.demo_project.target.kafka_options(), {r.topic for r in route.routes}) if route else None
        now = time.monotonic()
        if ends != self._route_ends:
            self._route_ends, self._route_since = ends, now
            return False
        routed = sum(o for parts in (ends or {}).values() for o in parts.values())
        return routed >= self.sent or now - self._route_since >= ROUTE_QUIET_S

    def topic_ends(self, batches: dict[str, list[dict]]) -> dict[str, dict[str, int]] | None:
        """The end offsets of every topic the queries read (None when Kafka does not answer)."""
        from runner.stream.status import end_offsets

        topics = {t for rows in batches.values() for b in rows for t in b.get("read_to", {})}
        return end_offsets(self.demo_project.target.kafka_options(), topics)

    def settled(self, batches: dict[str, list[dict]], since: float, ends: dict[str, dict[str, int]] | None,
                delay_s: float | None = None) -> bool:
        """After catching up, each query that holds rows until the watermark passes them (the KPIs;
        not the readers, whose repeat filter passes each row on) has written the windows its input
        closes. Its last batch with rows read its topics to their ends (`ends`, read once caught up,
        when nothing more is written); then either
        - its watermark moved on, and Spark ran one more batch without rows to write the windows
          that closes: that batch, with no rows, read to the ends after one with rows. It often ran
          before catching up was seen (within a second of the last rows), so every batch counts;
          the query's first batch, over a still empty topic, has no rows either but did not read to
          the ends;
        - or it did not (its latest event time minus the watermark delay `delay_s` is not past the
          watermark that batch used: Spark's rule), so no batch follows and the windows are written.
        Bounded by SETTLE_MAX_S (also when Kafka did not say where the ends are)."""
        if time.monotonic() - since >= SETTLE_MAX_S:
            return True
        if ends is None:
            return False

        def at_ends(b: dict) -> bool:
            return bool(b.get("read_to")) and all(ends.get(topic) == parts for topic, parts in b["read_to"].items())

        def moves_watermark(b: dict) -> bool:
            watermark, latest = parse_time(b.get("watermark")), parse_time(b.get("max_event_time"))
            if delay_s is None or watermark is None or latest is None:
                return True   # not known: wait for the batch that would follow
            return (latest - watermark).total_seconds() > delay_s

        def closed(rows: list[dict]) -> bool:
            had_rows = False
            for b in rows:
                if at_ends(b) and (had_rows if b["rows"] == 0 else not moves_watermark(b)):
                    return True
                had_rows = had_rows or b["rows"] > 0
            return False

        return all(closed(rows) for rows in batches.values() if any(b.get("waits_for_watermark") for b in rows))

    # ------------------------------------------------------------------ the live part

    def header(self, phase: str) -> str:
        return demo_view.header(self, phase)

    def live(self) -> str:
        from runner.compile.compiler import compile_project
        from runner.tools import dashboard

        manifest = compile_project(self.demo_project, write=False)
        self.manifest = manifest  # the sinks as apply started them, whatever happens to sql/ meanwhile
        self.waited_for = micro_batch_queries(self.demo_project, manifest)
        delay_s = watermark_delay_s(manifest)
        feed = dashboard.Feed(self.demo_project, manifest)
        c = self.console
        phase = "starting Spark and the queries" + (", warming them up first" if self.opts.warm_up else "")
        snap = feed.snapshot()
        last_check = 0.0
        caught_up_at, ends = None, None
        with Live(dashboard.render(snap, self.header(phase), c.width), console=c, refresh_per_second=4,
                  transient=False, vertical_overflow="crop") as live:
            while True:
                if self._left() <= 0:
                    return "timeout"
                self.check_apply()
                if self.replay_error:
                    raise RunnerError(f"the replay failed: {self.replay_error}")
                if self.replay_thread is None:
                    if self.apply_started():
                        self._mark("start Spark" + (" + warm-up" if self.opts.warm_up else ""), self.apply_started_at)
                        self.start_replay()
                        phase = "replaying"
                    elif time.monotonic() - self.apply_started_at > START_TIMEOUT_S:
                        raise RunnerError(f"the queries did not start within {START_TIMEOUT_S:.0f}s",
                                          where=str(self.apply_log))
                elif not self.replay_thread.is_alive():
                    if phase == "replaying":
                        self._mark("replay", self.replay_started_at)
                        self.drain_started_at = time.monotonic()
                        phase = "replay done; waiting for the queries to catch up"
                    if caught_up_at is None and time.monotonic() - last_check >= 2.0:
                        last_check = time.monotonic()
                        if self.caught_up():
                            caught_up_at = time.monotonic()
                            ends = self.topic_ends(feed.progress.batches)
                            phase = "caught up; the KPIs write their last closed windows"
                    if caught_up_at is not None and self.settled(feed.progress.batches, caught_up_at, ends, delay_s):
                        self._mark("catch up", self.drain_started_at)
                        snap = feed.snapshot()
                        live.update(dashboard.render(snap, self.header("all records processed; stopping"), c.width))
                        self.snapshot = snap
                        return "done"
                snap = feed.snapshot()
                self.snapshot = snap
                live.update(dashboard.render(snap, self.header(phase), c.width))
                time.sleep(self.opts.refresh_s)

    # ------------------------------------------------------------------ stopping

    def shutdown(self) -> None:
        """Stop the replay, apply (and Spark) and the broker; Ctrl-C is ignored meanwhile."""
        from runner.tools import kafka_local

        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            t = time.monotonic()
            self.replay_stop.set()
            if self.replay_thread is not None:
                self.replay_thread.join(timeout=40)
            if self.train_proc is not None and self.train_proc.poll() is None:
                stop_process(self.train_proc, timeout_s=20)
            if self.apply_proc is not None:
                with self.console.status("stopping the queries (they finish their batch) and Spark"):
                    stop_process(self.apply_proc)
            if self.broker_dir is not None:
                with self.console.status("stopping the broker"):
                    kafka_local.stop(self.broker_dir)
            self._mark("stop", t)
        finally:
            signal.signal(signal.SIGINT, previous)

    def summary(self, stopped_by: str) -> Table:
        return demo_view.summary(self, stopped_by)


def run(project, opts: DemoOptions | None = None, console: Console | None = None) -> DemoResult:
    """The whole demo; always stops what it started, also on Ctrl-C, SIGTERM or an error."""
    from runner.tools import report as reports

    opts = opts or DemoOptions()
    console = console or Console()
    demo = Demo(project, opts, console)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    old_term = signal.signal(signal.SIGTERM, on_term)
    stopped_by, error = "error", None
    try:
        demo.prepare()
        demo.start_apply()
        stopped_by = demo.live()
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    except RunnerError as e:
        error = str(e)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            demo.shutdown()
        finally:
            signal.signal(signal.SIGTERM, old_term)

    rep = None
    if demo.demo_project is not None and (demo.demo_project.model_path / "model_card.json").exists():
        folder = opts.report_dir or project.root / "output" / "report"
        notes = [f"`runner demo` run {demo.run_dir.name}: {demo.source_text}",
                 f"replayed {getattr(demo, 'sent', 0):,} rows at {getattr(demo, 'speedup', 0):,.0f}x event time; "
                 f"ended: {stopped_by}; run folder {demo.run_dir}"]
        rep = reports.build(demo.demo_project, folder, title="fraud-stream demo report", notes=notes,
                            manifest=getattr(demo, "manifest", None))
    console.print(demo.summary(stopped_by))
    if rep is not None:
        console.print(f"report: {rep.markdown} ({', '.join(p.name for p in rep.pngs)})")
    seconds = time.monotonic() - demo.t0
    code = {"done": 0, "interrupt": 130}.get(stopped_by, 1)
    if stopped_by == "timeout":
        error = f"the demo did not finish within --timeout {opts.timeout_s:.0f}s; everything was stopped"
    return DemoResult(code, stopped_by, demo.run_dir, seconds, rep, demo.phases, error)
