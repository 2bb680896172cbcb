"""`runner demo`: one command from a fresh clone to live fraud alerts, then a report.

Orchestration only. Every run gets its own folder, .runtime/demo/<time>/, holding a
generated project.yml (the project's sql/ and vars; its own broker, model, checkpoints,
outputs and progress logs), so the demo never touches a user's own runs. In order:

1. train `runner train` (data/creditcard.csv if it exists, else synthetic rows) in a
   subprocess, while a fresh local broker starts (port 9092, or a free one if taken);
2. start `runner apply` in a subprocess, its output and Spark's log in apply.log;
3. replay the rows at a speed-up while the live dashboard shows what the streams commit;
4. once every query's committed offsets reach the end of the topic, stop apply (SIGTERM,
   its queries stop cleanly) and the broker; the same on Ctrl-C;
5. print a summary and write the report (output/report/).
"""
from __future__ import annotations

import contextlib

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from runner.errors import RunnerError
from runner.tools.kafka_local import tail

DEMO_FOLDER = "demo"          # under the project's runtime folder (.runtime/demo)
KEEP_RUNS = 3                 # older demo run folders are removed when a new one starts
DEFAULT_ROWS = 10000
DEFAULT_REPLAY_S = 90.0       # the automatic speed-up replays the rows in about this long
# Synthetic rows to train on: the lab's 80/20 split must leave >= 100 frauds (~0.17% of rows) in the
# test part, or the threshold table and PR curve rest on a handful of cases (20,000 rows left 3).
# 320,000 rows (about the real file's 284,807) leave 100+ (tests/model/test_demo_training_size.py).
SYNTHETIC_TRAIN_ROWS = 320_000
TRAIN_SEED = 7                # the synthetic training rows differ from the replayed ones (seed 42)
START_TIMEOUT_S = 240.0       # apply: Spark up and every query started
STOP_TIMEOUT_S = 90.0
SETTLE_MAX_S = 60.0           # caught up: how long to wait at most for the KPIs' closing batch


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


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port(preferred: int) -> int:
    from runner.tools.kafka_local import free_port
    return preferred if preferred and _port_free(preferred) else free_port()


def new_run_dir(project) -> Path:
    """A fresh .runtime/demo/<time>/ folder; removes all but the newest KEEP_RUNS - 1 older runs."""
    base = project.runtime_dir / DEMO_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in base.iterdir() if p.is_dir() and p.name[:1].isdigit())
    for p in old[:max(0, len(old) - (KEEP_RUNS - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = base / stamp
    n = 1
    while run.exists():
        n += 1
        run = base / f"{stamp}-{n}"
    run.mkdir()
    return run


def write_demo_project(project, run_dir: Path, bootstrap: str) -> Path:
    """run_dir/project.yml: the project's vars, topics, sources and sql/, with the demo's own
    broker, model, checkpoints, outputs and runtime folder."""
    raw = yaml.safe_load(project.file.read_text()) or {}
    raw["model"] = str(run_dir / "models" / project.model_path.name)
    raw["paths"] = {"sql": str(project.sql_dir), "target": str(run_dir / "target"),
                    "runtime": str(run_dir / ".runtime")}
    base = dict((raw.get("targets") or {}).get(project.target.name) or {})
    base.update({"master": project.target.master, "output_root": str(run_dir / "output"),
                 "checkpoint_root": str(run_dir / "checkpoints"),
                 "kafka": {"bootstrap.servers": bootstrap},  # the demo's own plaintext broker
                 # Spark's progress bars would fill apply.log; the dashboard shows progress instead
                 "spark_conf": {**project.target.spark_conf, "spark.ui.showConsoleProgress": "false"}})
    raw["targets"] = {"demo": base}
    raw["default_target"] = "demo"
    f = run_dir / "project.yml"
    f.write_text(f"# Written by `runner demo` from {project.file}; this demo run's own broker and folders.\n"
                 + yaml.safe_dump(raw, sort_keys=False))
    return f


def _error_line(log: Path) -> str:
    """The runner's own `error: ...` line from a log (Spark's stack traces around it left out)."""
    lines = tail(log, 400).splitlines()
    ours = [line for line in lines if line.startswith("error: ")]
    return ours[-1][len("error: "):] if ours else "\n" + "\n".join(lines[-8:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_process(proc: subprocess.Popen | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process we started (its own session), wait, then SIGKILL its group if needed;
    returns once neither it nor its children (Spark's JVM) are left."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    deadline = time.monotonic() + 20
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the JVM exits once its Python parent has gone
    if _group_alive(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def micro_batch_queries(project, manifest) -> set[str]:
    """The streaming queries (checkpoint folder names) that run micro-batches, i.e. all but those
    in Spark's Real-time Mode, whose offsets are committed once per checkpoint interval."""
    from runner.stream.apply import plan

    plans = plan(project, manifest)
    realtime = {p.checkpoint.name for p in plans
                if (p.spec.sink.get("trigger") or manifest.model(p.spec.model).config.trigger) == "realtime"}
    return {p.checkpoint.name for p in plans} - realtime


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
        from runner.tools import kafka_local
        from runner.stream.kafka_clients import ensure_topics
        from runner.compile.project import load_project

        data = self.opts.data or (self.project.root / "data" / "creditcard.csv")
        use_csv = data.is_file()
        if self.opts.data and not use_csv:
            raise RunnerError(f"no such data file: {data}", hint="put the Kaggle creditcard.csv there, or leave --data out")
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
        with c.status(f"training the model on {'creditcard.csv' if self.data else f'{self.opts.train_rows:,} synthetic rows'} "
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
        self.apply_proc = self._spawn(["apply", "--quiet"], self.apply_log)
        self.apply_started_at = time.monotonic()

    def apply_started(self) -> bool:
        try:
            return "\nstarted " in "\n" + self.apply_log.read_text(errors="replace")
        except OSError:
            return False

    def check_apply(self) -> None:
        if self.apply_proc and self.apply_proc.poll() is not None:
            raise RunnerError(f"`runner apply` exited with code {self.apply_proc.returncode}: {_error_line(self.apply_log)}",
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
        # when the topics it writes stop growing (two checks apart) while their readers are caught up.
        route = topology.route_plan(self.manifest)
        ends = end_offsets(self.demo_project.target.kafka_options(), {r.topic for r in route.routes}) if route else None
        stable, self._route_ends = ends == getattr(self, "_route_ends", None), ends
        return stable

    def settled(self, batches: dict[str, list[dict]], since: float) -> bool:
        """After catching up, each stateful query (the KPIs) has run the batch without new data that
        Spark runs to move the watermark on and write the windows it closes; bounded by SETTLE_MAX_S."""
        if time.monotonic() - since >= SETTLE_MAX_S:
            return True
        stateful = [rows for rows in batches.values() if any(b.get("stateful") for b in rows)]
        return all(rows[-1]["rows"] == 0 for rows in stateful)

    # ------------------------------------------------------------------ the live part

    def header(self, phase: str) -> str:
        total = len(getattr(self, "rows", [])) or self.opts.rows
        done = min(self.sent, total)
        width = 30
        filled = int(width * done / total) if total else 0
        bar = "[green]" + "━" * filled + "[/][grey37]" + "━" * (width - filled) + "[/]"
        return (f"[bold]{phase}[/]   elapsed {time.monotonic() - self.t0:,.0f}s   "
                f"replay {bar} {done:,}/{total:,} at {getattr(self, 'speedup', 0):,.0f}x event time\n"
                f"data: {self.source_text}   broker {self.demo_project.target.bootstrap_servers}   "
                f"Spark log: {self.apply_log}   [dim]Ctrl-C stops everything[/]")

    def live(self) -> str:
        from runner.tools import dashboard
        from runner.compile.compiler import compile_project

        manifest = compile_project(self.demo_project, write=False)
        self.manifest = manifest  # the sinks as apply started them, whatever happens to sql/ meanwhile
        self.waited_for = micro_batch_queries(self.demo_project, manifest)
        feed = dashboard.Feed(self.demo_project, manifest)
        c = self.console
        phase = "starting Spark and the queries"
        snap = feed.snapshot()
        last_check = 0.0
        caught_up_at = None
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
                        self._mark("start Spark", self.apply_started_at)
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
                            phase = "caught up; the KPIs write their last closed windows"
                    if caught_up_at is not None and self.settled(feed.progress.batches, caught_up_at):
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
        from runner.stream import outputs
        from runner.stream.progress import parquet_sinks

        t = Table(title=f"demo summary ({stopped_by})", show_header=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("data", self.source_text)
        if hasattr(self, "rows"):
            t.add_row("replayed", f"{self.sent if self.replay_summary is None else self.replay_summary.sent:,} of "
                                  f"{len(self.rows):,} rows, {self.event_span_s / 60:,.0f} minutes of event time "
                                  f"at {self.speedup:,.0f}x")
        if self.demo_project is not None:
            sinks = parquet_sinks(self.demo_project, getattr(self, "manifest", None))
            alerts = outputs.read(sinks["fraud_alerts"], columns=["txn_id", "Class"]) if "fraud_alerts" in sinks else None
            if alerts is not None:
                alerts = alerts.drop_duplicates("txn_id")
                t.add_row("alerts", f"{len(alerts):,} ({int((alerts['Class'] == 1).sum()):,} on true frauds)")
            snap = getattr(self, "snapshot", None)
            if snap is not None:
                t.add_row("KPI windows", f"{snap.kpi_windows:,} closed one-minute windows")
                t.add_row("rejected / late", f"{snap.rejected:,} / {snap.late:,}")
        t.add_row("time", ", ".join(f"{k} {v:.0f}s" for k, v in self.phases.items())
                  + f"; total {time.monotonic() - self.t0:.0f}s")
        if self.run_dir:
            t.add_row("run folder", f"{self.run_dir} (project.yml, train.log, apply.log, outputs, checkpoints)")
        return t


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
