"""The runner's verbs, nothing else: each parses options and calls one module."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from runner import output
from runner.errors import RunnerError

console = Console(stderr=False)
err_console = Console(stderr=True)


class Context:
    def __init__(self, project_dir: str, target: str | None, master: str | None):
        self.project_dir = project_dir
        self.target = target
        self.master = master
        self._project = None

    @property
    def project(self):
        if self._project is None:
            from runner.compile.project import load_project
            self._project = load_project(self.project_dir, target=self.target, master=self.master)
            from runner.stream import storage
            # hdfs:// and s3a:// roots are read with the target's Spark settings, also before
            # (or without) a session: plan, reset, status, audit, dashboard, report.
            storage.configure(self._project.target.spark_conf)
        return self._project


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--project", "project_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding project.yml and sql/.")
@click.option("--target", default=None, envvar="RUNNER_TARGET", help="Target from project.yml (default: its default_target, `local`).")
@click.option("--master", default=None, help="Spark master URL (e.g. spark://host:7077).  [default: the target's master]")
@click.option("--log-level", type=click.Choice(["ERROR", "WARN", "INFO", "DEBUG"], case_sensitive=False),
              default="WARN", show_default=True,
              help="The lowest level of Spark's lines written to the verb's log, .runtime/logs/<verb>.log.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show Spark's and the JVM's lines on stderr too (they always go to the log file).")
@click.version_option(package_name="fraud-stream")
@click.pass_context
def cli(ctx, project_dir, target, master, log_level, verbose):
    """A SQL-first streaming fraud detector.

    Card transactions stream through Kafka, a trained model scores each one inside
    Spark Structured Streaming, alerts go to Kafka and Parquet, and per-minute KPIs
    are computed on event time. The streaming logic is Jinja-templated Spark SQL in sql/.

    Every verb that starts Spark writes Spark's and the JVM's own lines to
    .runtime/logs/<verb>.log (under the project's runtime path), not to the terminal;
    on a failure the runner prints the error's line and that file's path.
    """
    from runner.stream import spark_log

    # A pipe, a file, a CI log: lines as they are, for grep (rich would wrap them at 80 columns).
    console.soft_wrap = not console.is_terminal
    ctx.obj = Context(project_dir, target, master)
    spark_log.configure(ctx.invoked_subcommand or "runner", lambda: _runtime_dir(ctx.obj),
                        level=log_level, verbose=verbose)
    ctx.call_on_close(spark_log.release)


# --------------------------------------------------------------------------- kafka

@cli.group()
def kafka():
    """A local Kafka (KRaft) from the jars in jvm/, for machines without Docker: one broker, or a
    cluster of three with `start --brokers 3`.

    `stop` and `status` find a broker started with --data-dir without being given it again: the
    CLI records each data folder it starts in the project's runtime dir (.runtime/brokers/).
    """


def _runtime_dir(ctx: Context) -> Path:
    try:
        return ctx.project.runtime_dir
    except RunnerError:  # no project.yml: the folder the runner was pointed at
        return Path(ctx.project_dir) / ".runtime"


def _broker_dir(ctx: Context, data_dir: str | None) -> Path:
    return Path(data_dir) if data_dir else _runtime_dir(ctx) / "kafka"


def _registry(ctx: Context):
    from runner.tools.kafka_local import Registry
    return Registry(_runtime_dir(ctx) / "brokers")


def _located_dir(ctx: Context, data_dir: str | None) -> Path:
    """--data-dir, else the default folder or the one running broker this project's CLI started."""
    from runner.tools import kafka_local
    return Path(data_dir) if data_dir else kafka_local.locate(_broker_dir(ctx, None), _registry(ctx))


_data_dir_opt = click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                             help="Broker state folder.  [default for start: .runtime/kafka; for stop and "
                                  "status: the broker this project's `kafka start` started]")


def _say(text: str) -> None:
    """One line as it is: paths are not wrapped (copy-pasteable) nor read as rich markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _describe(state) -> str:
    if state.brokers == 1:
        return f"running on {state.bootstrap} (pid {state.pid}), data in {state.data_dir}"
    up = sum(n.running for n in state.nodes)
    return f"{up} of {state.brokers} brokers running on {state.bootstrap}, data in {state.data_dir}"


@kafka.command("start")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535),
              help="PLAINTEXT port of the (first) broker on 127.0.0.1; a cluster's other brokers take free ports.")
@click.option("--brokers", default=1, show_default=True, type=click.IntRange(1, 5),
              help="Broker processes. 3 makes a local KRaft cluster that survives losing one node: every "
                   "node is broker and controller, topics get one replica per broker, min.insync.replicas 2.")
@_data_dir_opt
@click.option("--topics/--no-topics", default=True, show_default=True, help="Create the project's topics once it answers.")
@pass_ctx
def kafka_start(ctx, port, brokers, data_dir, topics):
    """Format storage on first use, start the broker(s) in the background, wait until all answer.

    On a cluster with a node down, `start` starts that node again on its recorded ports."""
    from runner.stream.kafka_clients import ensure_topics
    from runner.tools import kafka_local

    folder = _broker_dir(ctx, data_dir)
    state = kafka_local.start(folder, port, brokers=brokers)
    _registry(ctx).add(folder)
    _say(f"kafka: {_describe(state)}")
    if state.brokers > 1:
        for n in state.nodes:
            _say(f"  node {n.node_id}: {n.address} (pid {n.pid})")
    if topics:
        try:
            wanted = ctx.project.topics
        except RunnerError:
            wanted = {}
        created = ensure_topics({"bootstrap.servers": state.bootstrap}, wanted)
        if created:
            _say(f"kafka: created topics {', '.join(created)}")


@kafka.command("stop")
@_data_dir_opt
@pass_ctx
def kafka_stop(ctx, data_dir):
    """Stop the broker(s) started by `kafka start` (those processes only) and wait for them to exit."""
    from runner.tools import kafka_local

    folder = _located_dir(ctx, data_dir)
    state = kafka_local.stop(folder)
    _registry(ctx).remove(folder)
    if state is None:
        _say("kafka: not running")
    elif state.brokers == 1:
        _say(f"kafka: stopped (pid {state.pid})")
    else:
        _say(f"kafka: stopped {state.brokers} brokers (pids {', '.join(str(n.pid) for n in state.nodes)})")


@kafka.command("status")
@_data_dir_opt
@pass_ctx
def kafka_status(ctx, data_dir):
    """Say whether the broker(s) run, their ports, pids and topics.

    Exit 0 when every broker runs, 1 when none does, 2 when a cluster has a node down."""
    from runner.stream.kafka_clients import list_topics
    from runner.tools import kafka_local

    state = kafka_local.read_state(_located_dir(ctx, data_dir))
    if not state:
        _say("kafka: not running")
        sys.exit(1)
    _say(f"kafka: {_describe(state)}")
    if state.brokers > 1:
        for n in state.nodes:
            _say(f"  node {n.node_id}: {n.address} (pid {n.pid}) {'running' if n.running else 'DOWN'}")
    topics = list_topics({"bootstrap.servers": state.bootstrap})
    _say(f"topics: {', '.join(topics) if topics else '(none)'}")
    if not all(n.running for n in state.nodes):
        sys.exit(2)


# --------------------------------------------------------------------------- streaming

def parse_var_options(values: tuple[str, ...]) -> dict[str, str]:
    """`--var name=value` pairs; the values are checked against project.yml's types when rendering."""
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected name=value, got {item!r}", param_hint="--var")
        out[name.strip()] = value
    return out


_var_opt = click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE",
                        help="Override a var from project.yml (repeatable); checked against its declared type.")


def _compiled(ctx: Context, vars_: tuple[str, ...], *, write: bool = True):
    """The manifest run time works from: target/manifest.json as `runner compile` wrote it, compiled
    again first (one line on stderr says why) when project.yml, sql/, the --var options or the model
    card changed since. write=False for the read-only verbs: then target/ is left as it is."""
    from runner.compile.compiler import current_manifest
    return current_manifest(ctx.project, parse_var_options(vars_), write=write)


def _plan_grid(plans) -> output.Grid:
    from runner.compile.fingerprint import COMPATIBLE, INCOMPATIBLE, NEW
    colour = {NEW: "cyan", COMPATIBLE: "yellow", INCOMPATIBLE: "bold red"}
    grid = output.Grid(["sink", "writes to", "runs in query", "verdict", "why"], title="plan",
                       style=lambda col, cell: colour.get(cell, "green") if col == "verdict" else None)
    for p in plans:
        grid.add(p.name, f"{p.spec.sink['kind']}: {p.spec.location}", p.group, p.verdict.kind, "\n".join(p.verdict.reasons))
    return grid


def _plan_json(plans, analysed: int | None) -> dict:
    from runner.compile.fingerprint import plan_exit_code
    kinds = [p.verdict.kind for p in plans]
    return {
        "analysed_models": analysed,
        "queries": [{"name": group, "checkpoint": str(members[0].checkpoint),
                     "sinks": [p.name for p in members]} for group, members in _by_query(plans).items()],
        "sinks": [{"name": p.name, "model": p.spec.model, "kind": p.spec.sink["kind"], "location": str(p.spec.location),
                   "query": p.group, "checkpoint": str(p.checkpoint), "verdict": p.verdict.kind,
                   "reasons": list(p.verdict.reasons)} for p in plans],
        "summary": {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)},
        "detailed_exitcode": plan_exit_code(kinds),
    }


def _by_query(plans) -> dict:
    groups: dict = {}
    for p in plans:
        groups.setdefault(p.group, []).append(p)
    return groups


def _counted(n: int, word: str) -> str:
    plural = {"query": "queries"}.get(word, word + "s")
    return f"{n} {word if n == 1 else plural}"


@cli.command("plan")
@_var_opt
@click.option("--no-spark", is_flag=True, help="Skip Spark's analysis of the models (verdicts only).")
@output.format_option()
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when every query resumes unchanged, 2 when there are changes apply can carry out "
                   "(NEW, or RESUME (compatible change)), 3 when a query is INCOMPATIBLE, 1 on an error.")
@pass_ctx
def plan_cmd(ctx, vars_, no_spark, fmt, detailed_exitcode):
    """Compile, analyse every model with Spark (no data read) and say, for each sink,
    NEW / RESUME / RESUME (compatible change) / INCOMPATIBLE with its query's checkpoint, and why.

    Exit 3 when a query is INCOMPATIBLE (apply would refuse it), 1 on an error, else 0. With
    --detailed-exitcode, as `terraform plan -detailed-exitcode`, for a CI job: 0 nothing changes,
    2 changes apply can carry out, 3 a query is INCOMPATIBLE, 1 an error."""
    from runner.compile.fingerprint import plan_exit_code
    from runner.stream import apply as runtime

    fmt = output.resolve(fmt, console)
    project = ctx.project
    manifest = _compiled(ctx, vars_)
    analysed = None
    if not no_spark:
        from runner.stream.session import session_for
        spark = session_for(project, app_name="fraud-detector-plan")
        analysed = len(runtime.analyse(spark, project, manifest))
    plans = runtime.plan(project, manifest, parse_var_options(vars_))
    code = plan_exit_code(p.verdict.kind for p in plans)
    if fmt == output.JSON:
        output.emit_json("plan", _plan_json(plans, analysed))
    else:
        if analysed is not None:
            _say(f"analysed {analysed} models with Spark against the source schemas")
        output.render(console, _plan_grid(plans), fmt)
        _say(f"{_counted(len(plans), 'sink')} in {_counted(len(_by_query(plans)), 'query')}")
        if code == 3:
            bad = sorted({p.spec.model for p in plans if p.verdict.refused})
            _say(f"apply will refuse this; to start those queries fresh: "
                 f"runner apply {' '.join('--reset ' + m for m in bad)}")
    if code == 3 or (detailed_exitcode and code):
        sys.exit(code)


@cli.command("apply")
@_var_opt
@click.option("--available-now", is_flag=True, help="Drain what is in Kafka now, then stop.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Stop cleanly after this many seconds.  [default: run until Ctrl-C]")
@click.option("--reset", "resets", multiple=True, metavar="MODEL",
              help="Archive MODEL's checkpoints (and Parquet output) first, so its queries start fresh.")
@click.option("--quiet", is_flag=True, help="No per-batch progress lines.")
@click.option("--realtime/--no-realtime", default=True, show_default=True,
              help="Run Kafka sinks marked trigger='realtime' in Spark's Real-time Mode (else micro-batches).")
@click.option("--status-file", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help='For a supervisor (runner demo uses it): JSON {"state": "started"|"error"|"stopped", ...}, '
                   "replaced atomically as apply starts its queries, fails or stops.  [default: none]")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on http://<target's metrics_host, default 127.0.0.1>:PORT/metrics "
                   "while the streams run (README \"Metrics\").  [default: the target's metrics_port, else none]")
@click.option("--warm-up", "warm_up", type=click.IntRange(0, 100), default=0, show_default=True, metavar="BATCHES",
              help="Before the first record, run the micro-batch queries BATCHES batches over scratch records "
                   "(scratch folder, no topic or output touched) so the JVM has compiled what every batch runs; "
                   "20 take ~30 s on 2 cores. Local master only (README \"Benchmarks\").")
@pass_ctx
def apply_cmd(ctx, vars_, available_now, timeout, resets, quiet, realtime, status_file, metrics_port, warm_up):
    """Start the streams: Kafka sources, fraud_prob, the models' views in DAG order, and one
    streaming query per sink, each with its own checkpoint. Refuses INCOMPATIBLE changes
    unless --reset. Ctrl-C (or SIGTERM) stops every query cleanly and exits 0."""
    if warm_up and available_now:
        raise click.UsageError("--warm-up is for a running pipeline's first batches; --available-now drains "
                               "a backlog in a few large batches, whose cost is per row: drop one of them")
    from runner.stream import run_status

    with run_status.reporting(status_file) as status:
        _apply(ctx, vars_, available_now, timeout, resets, quiet, realtime, status, metrics_port, warm_up)


def _apply(ctx, vars_, available_now, timeout, resets, quiet, realtime, status, metrics_port=None,
           warm_up=0) -> None:
    import threading

    from runner.stream import apply as runtime
    from runner.stream import metrics
    from runner.stream.session import session_for

    project = ctx.project
    manifest = _compiled(ctx, vars_)
    for model in resets:
        for src, dst in runtime.reset(project, manifest, model):
            console.print(f"reset {model}: archived {src} -> {dst}")
    plans = runtime.plan(project, manifest, parse_var_options(vars_))
    output.render(console, _plan_grid(plans), output.resolve(None, console))

    stop_event = threading.Event()
    runtime.install_signal_handlers(stop_event)

    def on_batch(progress: dict) -> None:
        s = runtime.summarize(progress)
        if not quiet and s["rows"]:
            console.print(f"{s['name']:<34} batch {s['batch']:>4}: {s['rows']:>7} rows "
                          f"{s['rows_per_s']:>9.0f} rows/s {s['duration_ms']:>6} ms"
                          + (f"  late {s['late_rows']}" if s["late_rows"] else ""), highlight=False)

    def on_started(queries) -> None:
        started = {q.name for q in queries}
        status.started(sorted(started))
        for p in (p for p in plans if p.group in started):
            console.print(f"started {p.name:<34} -> {p.spec.sink['kind']}: {p.spec.location}  "
                          f"(query {p.group}, checkpoint {p.checkpoint})", highlight=False)

    runtime.preflight(project, plans)
    port = metrics_port or project.target.metrics_port
    with metrics.serving(project, manifest, plans, port=port, host=project.target.metrics_host,
                         on_batch=on_batch) as batch_seen:
        if port:
            console.print(f"metrics on http://{project.target.metrics_host}:{port}/metrics", highlight=False)
        spark = session_for(project)
        # Again: starting the SparkContext put pyspark's own SIGINT handler in place (it cancels every
        # job and raises KeyboardInterrupt), so Ctrl-C ended apply with "Spark failed", exit 1.
        runtime.install_signal_handlers(stop_event)
        try:
            result = runtime.run(spark, project, manifest, plans, available_now=available_now, timeout_s=timeout,
                                 stop_event=stop_event, on_batch=batch_seen, on_started=on_started, realtime=realtime,
                                 on_late_rows=getattr(batch_seen, "late_rows", None), warm_up_batches=warm_up,
                                 on_warm_up=lambda text: console.print(text, highlight=False))
        finally:
            spark.stop()   # drains Spark's listener bus while Python still answers its callbacks
    if result.error:
        raise RunnerError(result.error, hint="fix the cause and run `runner apply` again; checkpoints resume where it stopped")
    status.stopped(result.stopped_by)
    ran = {p.group for p in plans}
    console.print(f"stopped ({result.stopped_by}); {'all ' if len(ran) > 1 else ''}{_counted(len(ran), 'query')} "
                  f"(writing {_counted(len(plans), 'sink')}) ended cleanly")


@cli.command("reset")
@click.argument("model")
@pass_ctx
def reset_cmd(ctx, model):
    """Archive MODEL's checkpoints (and Parquet outputs) so its queries start fresh. Never deletes."""
    from runner.stream import apply as runtime

    moved = runtime.reset(ctx.project, _compiled(ctx, ()), model)
    for src, dst in moved:
        console.print(f"archived {src} -> {dst}")
    if not moved:
        console.print(f"{model}: nothing to archive (no checkpoint yet)")


@cli.command("status")
@output.format_option()
@pass_ctx
def status_cmd(ctx, fmt):
    """Each query: checkpoint, last committed batch, offsets behind the topic end, last progress,
    and counts of rejected and late records."""
    from runner.stream.status import query_status
    from runner.tools.audit import audit

    fmt = output.resolve(fmt, console)
    rows = query_status(ctx.project)
    rejected = audit(ctx.project, _compiled(ctx, (), write=False)).rejected_by_reason if rows else {}
    if fmt == output.JSON:
        output.emit_json("status", {
            "checkpoint_root": str(ctx.project.checkpoint_root),
            "queries": [{"name": s.name, "checkpoint": str(s.checkpoint), "last_batch": s.last_batch,
                         "behind": s.behind, "late_rows": s.late_rows, "late_output": s.late_output,
                         "last_progress": s.last_progress}
                        for s in rows],
            "rejected_by_reason": rejected})
        return
    if not rows:
        _say(f"no queries yet under {ctx.project.checkpoint_root} (run `runner apply`)")
        return
    grid = output.Grid(["query", "last batch", "behind", "last rows/s", "last batch ms", "late rows", "checkpoint"],
                       title="queries", right={"last batch", "behind", "last rows/s", "last batch ms", "late rows"})
    for s in rows:
        lp = s.last_progress or {}
        grid.add(s.name, "-" if s.last_batch is None else s.last_batch, "?" if s.behind is None else s.behind,
                 f"{lp.get('rows_per_s', 0):.0f}" if lp else "-", lp.get("duration_ms", "-"), s.late_rows, s.checkpoint)
    output.render(console, grid, fmt)
    _say("rejected records: " + (", ".join(f"{k} {v}" for k, v in rejected.items()) or "none"))
    for s in rows:
        if s.late_output:
            _say(f"late rows of {s.name}: {s.late_rows} kept in {s.late_output}")


@cli.command("audit")
@output.format_option()
@pass_ctx
def audit_cmd(ctx, fmt):
    """Offline audit of the Parquet outputs: alerts, true frauds among them, precision and recall
    against the KPI totals, rejected records by reason, txn_ids written twice."""
    from dataclasses import asdict

    from runner.tools.audit import audit, frame

    fmt = output.resolve(fmt, console)
    result = audit(ctx.project, _compiled(ctx, (), write=False))
    if fmt == output.JSON:
        output.emit_json("audit", {**asdict(result), "precision": result.precision, "recall": result.recall})
        return
    grid = output.Grid(["what", "value"], title="audit of the Parquet outputs", right={"value"})
    for what, value in frame(result).itertuples(index=False):
        grid.add(what, "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else value))
    output.render(console, grid, fmt)


@cli.command("replay")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="A creditcard.csv-layout file.  [default: none; give --data or --synthetic]")
@click.option("--synthetic", type=click.IntRange(min=1), default=None, metavar="N",
              help="Send N synthetic rows instead.  [default: none; give --data or --synthetic]")
@click.option("--seed", default=42, show_default=True, help="Seed of the synthetic rows.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send only the first N rows.  [default: all]")
@click.option("--rate", type=float, default=None, metavar="EVENTS_PER_S",
              help="Events per wall-clock second.  [default: as fast as it can]")
@click.option("--speedup", type=float, default=None, metavar="X",
              help="Event-time seconds per wall-clock second.  [default: as fast as it can]")
@click.option("--start", "start_at", default=None, metavar="ISO_TIME",
              help="event_time of Time=0 (UTC).  [default: now, floored to the minute]")
@click.option("--topic", default=None, help="Topic to send to.  [default: the transactions source's topic]")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers.  [default: the target's]")
@pass_ctx
def replay_cmd(ctx, data, synthetic, seed, limit, rate, speedup, start_at, topic, bootstrap):
    """Send transactions to Kafka as JSON (all columns, a unique txn_id, event_time = start + Time).
    Without --rate or --speedup it sends as fast as it can."""
    from datetime import datetime, timezone

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from runner.stream.kafka_clients import ensure_topics
    from runner.tools import replay

    project = ctx.project
    rows, prefix = replay.load_rows(data, synthetic, seed=seed, limit=limit)
    options = project.target.kafka_options()
    if bootstrap:
        options["bootstrap.servers"] = bootstrap
    topic = topic or project.sources["transactions"].topic
    ensure_topics(options, {topic: project.topics.get(topic, 1)})
    start = None
    if start_at:
        try:
            start = datetime.fromisoformat(start_at.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"not an ISO time: {start_at!r}", param_hint="--start") from None
        start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("send", total=len(rows))
        summary = replay.send(options, topic, rows, start=start, id_prefix=prefix, rate=rate, speedup=speedup,
                              on_progress=lambda n: bar.advance(task, n))
    console.print(f"sent {summary.sent} to {topic} in {summary.seconds:.1f}s ({summary.rate:.0f}/s), "
                  f"errors {summary.errors}" + (f": {summary.first_error}" if summary.first_error else ""))
    if summary.errors:
        sys.exit(1)


# --------------------------------------------------------------------------- train

def _fmt(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


@cli.command("train")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="A creditcard.csv-layout file (Time, V1..V28, Amount, Class).  [default: none; give --data or --synthetic]")
@click.option("--synthetic", type=click.IntRange(min=100), default=None, metavar="N",
              help="Train on N synthetic creditcard-shaped rows instead.  [default: none; give --data or --synthetic]")
@click.option("--seed", default=42, show_default=True, help="Seed of the synthetic rows.")
@click.option("--model", "kind", type=click.Choice(["lr", "gbt"]), default="lr", show_default=True,
              help="lr: StandardScaler + LogisticRegression (the lab's); gbt: gradient-boosted trees.")
@click.option("--name", default=None, help="Model folder name.  [default: fraud_lr / fraud_gbt]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for models.  [default: models/ in the project]")
@click.option("--max-iter", default=50, show_default=True, type=click.IntRange(min=1),
              help="LogisticRegression maxIter, or the number of GBT trees.")
@click.option("--max-depth", default=5, show_default=True, type=click.IntRange(1, 10), help="GBT tree depth.")
@pass_ctx
def train_cmd(ctx, data, synthetic, seed, kind, name, out_dir, max_iter, max_depth):
    """Audit the data, fit the model, print PR-AUC, ROC-AUC and a threshold table, save it with a card."""
    from runner.stream.session import build_session, session_for
    from runner.tools import train as training

    if (data is None) == (synthetic is None):
        raise RunnerError("give exactly one of --data PATH or --synthetic N",
                          hint="runner train --data data/creditcard.csv  or  runner train --synthetic 100000")
    try:
        project = ctx.project
    except RunnerError:
        project = None
    if out_dir is None:
        out_dir = (project.root / "models") if project else Path("models")

    # In a project, the model is fitted on what its stream carries: the source schema's features.
    from runner.compile.features import schema_features
    features = schema_features(project) if project else training.LAYOUT_FEATURES
    with console.status("reading data"):
        dataset = training.load_csv(data, features) if data else training.load_synthetic(synthetic, seed)
    training.check_columns(dataset.frame, dataset.source, features)
    report = training.audit(dataset.frame)
    fmt = output.resolve(None, console)
    audit = output.Grid(["what", "value"], title=f"audit: {dataset.source}", show_header=False)
    audit.add("rows", f"{report['rows']:,}")
    audit.add("duplicate rows", f"{report['duplicates']:,} (dropped)")
    audit.add("missing cells", f"{report['missing_cells']:,}")
    for cls, label in (("0", "normal"), ("1", "fraud")):
        audit.add(f"class {cls} ({label})", f"{report['class_counts'][cls]:,} ({report['class_shares_pct'][cls]:.4f}%)")
    output.render(console, audit, fmt)

    with console.status("starting Spark") as status:
        spark = (session_for(project, app_name="runner-train") if project
                 else build_session(app_name="runner-train"))
        result = training.train(spark, dataset, kind=kind, out_dir=out_dir, name=name,
                                max_iter=max_iter, max_depth=max_depth, features=features,
                                on_step=lambda msg: status.update(msg))
    card = result.card
    split = card["split"]
    console.print(f"split 80/20 (seed 42): train {split['train_rows']:,} rows "
                  f"({split['train_class_counts'].get('1', 0)} frauds), test {split['test_rows']:,} rows "
                  f"({split['test_class_counts']['1']} frauds); fraud weight {card['class_weight']['1']:.2f}")
    console.print(f"[bold]{card['name']}[/] ({kind}): PR-AUC {card['metrics']['pr_auc']:.4f}, "
                  f"ROC-AUC {card['metrics']['roc_auc']:.4f} on the test part")
    columns = ["threshold", "alerts", "TP", "FP", "precision", "recall", "F1"]
    table = output.Grid(columns, title="threshold table (test part; alert = probability >= threshold)", right=set(columns))
    for row in card["threshold_table"]:
        table.add(f"{row['threshold']:.2f}", f"{row['alerts']:,}", f"{row['tp']:,}", f"{row['fp']:,}",
                  _fmt(row["precision"]), _fmt(row["recall"]), _fmt(row["f1"]))
    output.render(console, table, fmt)
    console.print(f"saved {result.model_dir} (pipeline/, model_card.json, {card['pr_curve']})")


# --------------------------------------------------------------------------- compile, lineage

def _sink_text(sink: dict) -> str:
    detail = {"kafka": "topic", "parquet": "path", "memory": "name"}.get(sink["kind"])
    text = f"{sink['kind']}:{sink[detail]}" if detail else sink["kind"]
    return text + (f" key={sink['key']}" if sink.get("key") else "")


@cli.command("compile")
@click.option("--select", "select_model", default=None, metavar="MODEL",
              help="Compile this model and the models it depends on.  [default: every model]")
@_var_opt
@output.format_option()
@pass_ctx
def compile_cmd(ctx, select_model, vars_, fmt):
    """Render every model to target/compiled/, check it, and write target/manifest.json."""
    from runner.compile.compiler import MANIFEST, compile_project

    fmt = output.resolve(fmt, console)
    manifest = compile_project(ctx.project, parse_var_options(vars_), select=select_model)
    written = ctx.project.target_dir / MANIFEST
    if fmt == output.JSON:
        output.emit_json("compile", {
            "project": manifest.project, "manifest": str(written),
            "models": [{"name": m.name, "path": m.path, "refs": list(m.refs),
                        "sources": [f"{k}.{n}" for k, n in m.sources], "sinks": [dict(s) for s in m.config.sinks],
                        "fingerprint": m.fingerprint} for m in manifest.models]})
        return
    grid = output.Grid(["model", "path", "sinks", "depends on", "fingerprint"],
                       title=f"{manifest.project}: {len(manifest.models)} models")
    for m in manifest.models:
        deps = list(m.refs) + [f"{k}.{n}" for k, n in m.sources]
        sinks = ", ".join(_sink_text(s) for s in m.config.sinks) or "(view)"
        grid.add(m.name, m.path, sinks, ", ".join(deps), m.fingerprint[:12])
    output.render(console, grid, fmt)
    _say(f"wrote {written}")


@cli.command("test")
@click.option("--select", "select_model", default=None, metavar="MODEL",
              help="Run only the cases of this model.  [default: every case under sql/]")
@pass_ctx
def test_cmd(ctx, select_model):
    """Run the SQL unit tests: each case runs one model as a batch query over given rows (no Kafka)
    and compares what it returns with the expected rows.

    A model's cases sit beside it, e.g. sql/scoring/scored_transactions.tests.yml:

    \b
      unit_tests:
        - name: threshold_edge
          model: scored_transactions
          vars: {threshold: 0.5}             # optional
          given:                             # each ref or source it reads
            - input: ref('stg_parsed')       # or source('kafka', 'transactions')
              rows:                          # a column left out is NULL
                - {txn_id: a, V1: 0.5}
          expect:
            rows:                            # only these columns are compared
              - {txn_id: a, is_alert: true}

    A ref's columns are its model's (or `schema: "col TYPE, ..."`); a Kafka value written as a
    mapping is sent as JSON. README.md, "Writing a SQL unit test", has the whole format. A failing
    case prints its file:line and the rows side by side. Exit 0 when all pass, 1 when one fails."""
    from runner.stream.session import session_for
    from runner.tools import sqltest

    cases = sqltest.project_cases(ctx.project, select_model)
    _compiled(ctx, (), write=False)   # a model that does not compile is its file:line, not every case's error
    if not cases:
        _say(f"no unit tests for {select_model or 'any model'} (sql/**/*.tests.yml)")
        return
    spark = session_for(ctx.project, app_name="runner-test")
    failed, seconds = 0, 0.0
    for result in sqltest.run_cases(spark, ctx.project, cases, colour=console.is_terminal):
        _say(f"{'PASS' if result.passed else 'FAIL'}  {result.case.model}: {result.case.name}  ({result.seconds:.1f}s)")
        if not result.passed:
            failed += 1
            console.print(result.error, markup=False, highlight=False, soft_wrap=True)
        seconds += result.seconds
    _say(f"{len(cases) - failed} passed, {failed} failed in {seconds:.1f}s")
    if failed:
        sys.exit(1)


@cli.command("lineage")
@click.argument("target", metavar="MODEL.COLUMN")
@_var_opt
@output.format_option()
@pass_ctx
def lineage_cmd(ctx, target, vars_, fmt):
    """The upstream source columns MODEL.COLUMN comes from (e.g. fraud_alerts.fraud_prob)."""
    from runner.compile.compiler import compile_project
    from runner.compile.lineage import column_lineage

    model = target.split(".", 1)[0]
    manifest = compile_project(ctx.project, parse_var_options(vars_), select=model, write=False)
    columns = column_lineage(ctx.project, manifest, target)
    if output.resolve(fmt, console) == output.JSON:
        output.emit_json("lineage", {"column": target, "source_columns": [
            {"source": c.source, "column": c.column, "field": c.field} for c in columns]})
        return
    console.print(f"{target} <- {len(columns)} source column(s):")
    for c in columns:
        console.print(f"  {c}", highlight=False)


@cli.command("docs")
@_var_opt
@click.option("--no-spark", is_flag=True,
              help="Do not start Spark: columns come from the SQL alone and their types are left unknown.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the site.  [default: target/docs]")
@pass_ctx
def docs_cmd(ctx, vars_, no_spark, out_dir):
    """Write the project's documentation as a static site: target/docs/index.html plus assets/,
    opened from disk (no server, no network).

    It shows the DAG (sources, models, sinks and the streaming queries they run in), each model's
    source and compiled SQL, its columns with Spark's types and the source columns each comes from
    (as `runner lineage`), the vars, each query's checkpoint verdict (as `runner plan`) and the
    model card (metrics, threshold table, PR curve). Spark analyses the models for the column
    types (no data read; needs a trained model, see `runner train`); --no-spark skips that."""
    from runner.tools import docs

    with console.status("runner docs") as status:
        result = docs.build(ctx.project, parse_var_options(vars_), out_dir=out_dir, use_spark=not no_spark,
                            on_step=status.update)
    console.print(f"documented {result.models} models, {result.columns} columns, {result.queries} sinks"
                  f"{'' if result.with_spark else ' (column types unknown: --no-spark)'}"
                  f"{'' if result.card else ' (no model card: run `runner train`)'} in {result.seconds:.1f}s")
    console.print(f"wrote {result.index}  (open it in a browser: file://{result.index.resolve()})", highlight=False,
                  soft_wrap=True)


# --------------------------------------------------------------------------- demo, dashboard, report

@cli.command("demo")
@click.option("--rows", default=10000, show_default=True, type=click.IntRange(min=100),
              help="How many rows to replay (the first N of data/creditcard.csv, or N synthetic rows).")
@click.option("--speedup", type=click.FloatRange(min=0, min_open=True), default=None, metavar="X",
              help="Event-time seconds replayed per wall second.  [default: replay the rows in about 90 s]")
@click.option("--train-rows", default=None, type=click.IntRange(min=1000),
              help="Synthetic rows to train on when there is no data/creditcard.csv.  "
                   "[default: 320,000, enough for 100+ frauds in the model's test part]")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="A creditcard.csv-layout file.  [default: data/creditcard.csv if it exists, else synthetic rows]")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535),
              help="The demo broker's port on 127.0.0.1; a free port is used when it is taken.")
@click.option("--timeout", default=900, show_default=True, type=click.FloatRange(min=10), metavar="SECONDS",
              help="Stop everything and exit 1 if the demo has not finished by then.")
@click.option("--report-dir", type=click.Path(file_okay=False), default=None,
              help="Where the report goes.  [default: output/report]")
@click.option("--warm-up", "warm_up", default=None, type=click.IntRange(0, 100), metavar="BATCHES",
              help="`runner apply --warm-up BATCHES` before the replay; 0 for none.  [default: 20]")
@pass_ctx
def demo_cmd(ctx, rows, speedup, train_rows, data, port, timeout, report_dir, warm_up):
    """Train, start a fresh local broker and the streams, replay rows at a speed-up with a live
    dashboard, stop everything once the replay is processed (or on Ctrl-C), print a summary and
    write the report. State goes to .runtime/demo/<time>/, never to your own runs' folders."""
    from runner.tools import demo

    opts = demo.DemoOptions(rows=rows, speedup=speedup, train_rows=train_rows or demo.SYNTHETIC_TRAIN_ROWS,
                            port=port, timeout_s=timeout,
                            report_dir=Path(report_dir) if report_dir else None,
                            data=Path(data) if data else None,
                            warm_up=demo.WARM_UP_BATCHES if warm_up is None else warm_up)
    result = demo.run(ctx.project, opts, console)
    if result.error:
        raise RunnerError(result.error, hint=f"logs in {result.run_dir}")
    console.print(f"demo {'finished' if result.exit_code == 0 else 'stopped'} in {result.seconds:.0f}s")
    sys.exit(result.exit_code)


@cli.command("dashboard")
@click.option("--refresh", default=2.0, show_default=True, type=click.FloatRange(min=0.2), metavar="SECONDS",
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one snapshot and exit (no live view).")
@pass_ctx
def dashboard_cmd(ctx, refresh, once):
    """A live view of a running `runner apply` of this project: KPIs per minute, the latest
    alerts, each query's rows/s and batch latency, rejected and late records. Ctrl-C quits."""
    from runner.tools import dashboard

    dashboard.run(ctx.project, refresh_s=refresh, once=once, console=console)


@cli.command("report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the PNGs and report.md.  [default: output/report]")
@pass_ctx
def report_cmd(ctx, out_dir):
    """Plot precision/recall against the threshold (model card), alerts and true frauds per minute
    (KPI Parquet) and batch latency (progress logs); write report.md with the numbers."""
    from runner.tools import report

    rep = report.build(ctx.project, out_dir)
    for p in rep.pngs:
        console.print(f"wrote {p}")
    console.print(f"wrote {rep.markdown}")


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="runner")
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as e:
        console.print(e.ctx.get_help() if e.ctx else e.format_message(), highlight=False, markup=False)
        sys.exit(0)
    except click.UsageError as e:  # unknown option, wrong value, missing argument: one line, no usage dump
        where = e.ctx.command_path if e.ctx else "runner"
        err_console.print(f"error: {where}: {e.format_message()} (see `{where} --help`)", style="red",
                          highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        err_console.print(f"error: {e.format_message()}", style="red", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except RunnerError as e:
        _fail(str(e))
    except Exception as e:
        if not type(e).__module__.startswith(("pyspark", "py4j")):
            raise   # a bug in the runner: its traceback
        from runner.stream.spark_log import error_line
        _fail(f"Spark failed: {error_line(e)}")


def _fail(message: str) -> None:
    """The error's line (and hint), then where Spark's full log is when this run started Spark."""
    from runner.stream.spark_log import current_file

    err_console.print(f"error: {message}", style="red", highlight=False, markup=False, soft_wrap=True)
    if current_file():
        err_console.print(f"  Spark's full log: {current_file()}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
