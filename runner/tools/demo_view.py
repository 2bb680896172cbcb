"""What the demo shows: the header above the live dashboard (phase, replay progress bar, where
the logs are) and the summary table at the end. Reads a Demo's state; changes nothing."""
from __future__ import annotations

import time

from rich.table import Table

BAR_WIDTH = 30


def header(demo, phase: str) -> str:
    total = len(getattr(demo, "rows", [])) or demo.opts.rows
    done = min(demo.sent, total)
    filled = int(BAR_WIDTH * done / total) if total else 0
    bar = "[green]" + "━" * filled + "[/][grey37]" + "━" * (BAR_WIDTH - filled) + "[/]"
    return (f"[bold]{phase}[/]   elapsed {time.monotonic() - demo.t0:,.0f}s   "
            f"replay {bar} {done:,}/{total:,} at {getattr(demo, 'speedup', 0):,.0f}x event time\n"
            f"data: {demo.source_text}   broker {demo.demo_project.target.bootstrap_servers}   "
            f"Spark log: {demo.apply_log}   [dim]Ctrl-C stops everything[/]")


def summary(demo, stopped_by: str) -> Table:
    from runner.compile.compiler import current_manifest
    from runner.stream import outputs
    from runner.stream.progress import parquet_sinks

    t = Table(title=f"demo summary ({stopped_by})", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("data", demo.source_text)
    if hasattr(demo, "rows"):
        sent = demo.sent if demo.replay_summary is None else demo.replay_summary.sent
        t.add_row("replayed", f"{sent:,} of {len(demo.rows):,} rows, {demo.event_span_s / 60:,.0f} minutes of "
                              f"event time at {demo.speedup:,.0f}x")
    if demo.demo_project is not None:
        # the manifest the demo's apply ran from (Ctrl-C before it compiled: the project as it is)
        manifest = getattr(demo, "manifest", None) or current_manifest(demo.demo_project, write=False)
        sinks = parquet_sinks(demo.demo_project, manifest)
        alerts = outputs.read(sinks["fraud_alerts"], columns=["txn_id", "Class"]) if "fraud_alerts" in sinks else None
        if alerts is not None:
            alerts = alerts.drop_duplicates("txn_id")
            t.add_row("alerts", f"{len(alerts):,} ({int((alerts['Class'] == 1).sum()):,} on true frauds)")
        snap = getattr(demo, "snapshot", None)
        if snap is not None:
            t.add_row("KPI windows", f"{snap.kpi_windows:,} closed one-minute windows")
            t.add_row("rejected / late", f"{snap.rejected:,} / {snap.late:,}")
    t.add_row("time", ", ".join(f"{k} {v:.0f}s" for k, v in demo.phases.items())
              + f"; total {time.monotonic() - demo.t0:.0f}s")
    if demo.run_dir:
        t.add_row("run folder", f"{demo.run_dir} (project.yml, train.log, apply.log, outputs, checkpoints)")
    return t
