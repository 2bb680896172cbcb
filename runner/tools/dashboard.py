"""The live terminal dashboard (rich): KPIs per minute, latest alerts, each query's throughput
and batch latency, rejected and late records.

It reads what a running `runner apply` leaves on disk (committed Parquet through
runner.outputs, progress logs), so it works next to any apply of the same project and
needs neither Spark nor Kafka. `runner demo` shows it with a header of its own.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runner.errors import RunnerError
from runner.stream import late_rows, outputs
from runner.stream.progress import ProgressTail, parquet_sinks

KPI_ROWS = 8
ALERT_ROWS = 7
SIDE_BY_SIDE_WIDTH = 140   # narrower terminals get the tables one under the other


@dataclass
class Snapshot:
    kpis: pd.DataFrame                       # the last KPI_ROWS windows, oldest first
    kpi_windows: int
    alerts: pd.DataFrame                     # the latest ALERT_ROWS alerts, newest first
    n_alerts: int
    queries: dict[str, dict] = field(default_factory=dict)
    rejected: int = 0
    late: int = 0
    late_kept: bool = False                  # late: the rows kept in late_transactions (exact), not Spark's count


class Feed:
    """Reads a project's run state; `snapshot()` is cheap enough to call every second."""

    def __init__(self, project, manifest=None):
        from runner.compile.compiler import current_manifest
        from runner.tools.audit import late_rows_locations

        self.project = project
        # read-only: a stale target/manifest.json is recompiled in memory, never rewritten
        manifest = manifest or current_manifest(project, write=False)
        self.sinks = parquet_sinks(project, manifest)
        self.late_output = late_rows_locations(project, manifest).get("kpi_per_minute")
        self.progress = ProgressTail(project.runtime_dir / "progress")

    def _read(self, model: str, columns: list[str]) -> pd.DataFrame:
        path = self.sinks.get(model)
        if path is None:
            return pd.DataFrame(columns=columns)
        try:
            return outputs.read(path, columns=columns)
        except (OSError, ValueError, RunnerError):
            # a file being replaced under us (on HDFS or S3 a RunnerError from runner/stream/storage.py):
            # the next refresh reads it
            return pd.DataFrame(columns=columns)

    def snapshot(self) -> Snapshot:
        kpis = self._read("kpi_per_minute", ["window_start", "window_end", "n_txn", "n_alert", "n_fraud_true",
                                              "tp", "fp", "precision", "recall"])
        if not kpis.empty:
            kpis = kpis.sort_values("window_start")
        alerts = self._read("fraud_alerts", ["txn_id", "event_time", "Amount", "Class", "fraud_prob"])
        if not alerts.empty:
            alerts = alerts.drop_duplicates("txn_id").sort_values(["event_time", "txn_id"], ascending=False)
        rejected = self._read("rejected_transactions", ["reason"])
        queries = {}
        late = 0
        for name, rows in sorted(self.progress.poll().items()):
            busy = [b for b in rows if b["rows"]]
            last = busy[-1] if busy else (rows[-1] if rows else None)
            recent = [b["duration_ms"] for b in busy[-10:]]
            queries[name] = {"batches": len(rows), "rows": sum(b["rows"] for b in rows),
                             "rows_per_s": last["rows_per_s"] if last else 0.0,
                             "last_ms": last["duration_ms"] if last else None,
                             "avg_ms": sum(recent) / len(recent) if recent else None,
                             "late": sum(b["late_rows"] for b in rows)}
            late = max(late, queries[name]["late"])
        if self.late_output is not None:   # exact: the late rows kept, over every run
            # a file being replaced under us: the next refresh reads it
            with contextlib.suppress(OSError, ValueError, RunnerError):
                late = late_rows.count(self.late_output)
        return Snapshot(kpis.tail(KPI_ROWS), len(kpis), alerts.head(ALERT_ROWS), len(alerts), queries,
                        len(rejected), late, self.late_output is not None)


def _num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return "-"
    return f"{x:.{digits}f}"


def _clock(ts) -> str:
    return pd.Timestamp(ts).strftime("%H:%M")


def kpi_table(s: Snapshot) -> Table:
    t = Table(title=f"KPIs per minute of event time ({s.kpi_windows} closed windows, latest last)", expand=True,
              box=box.SIMPLE_HEAD)
    for col in ("window (UTC)", "n_txn", "n_alert", "n_fraud_true", "tp", "fp", "precision", "recall"):
        t.add_column(col, justify="left" if col.startswith("window") else "right")
    for r in s.kpis.itertuples(index=False):
        t.add_row(f"{pd.Timestamp(r.window_start):%m-%d} {_clock(r.window_start)}-{_clock(r.window_end)}",
                  f"{r.n_txn:,}", f"[red]{r.n_alert}[/]" if r.n_alert else "0",
                  str(r.n_fraud_true), f"[green]{r.tp}[/]" if r.tp else "0", str(r.fp),
                  _num(r.precision), _num(r.recall))
    if s.kpis.empty:
        t.add_row("(none closed yet: a window is written once the watermark passes its end)", *[""] * 7)
    return t


def alert_table(s: Snapshot) -> Table:
    t = Table(title=f"Latest alerts ({s.n_alerts:,} in all)", expand=True, box=box.SIMPLE_HEAD)
    for col, just in (("txn_id", "left"), ("event time", "left"), ("amount", "right"),
                      ("fraud_prob", "right"), ("fraud", "center")):
        t.add_column(col, justify=just, no_wrap=True, min_width=len(col))
    for r in s.alerts.itertuples(index=False):
        t.add_row(str(r.txn_id), f"{pd.Timestamp(r.event_time):%H:%M:%S}", f"{r.Amount:,.2f}",
                  f"{r.fraud_prob:.4f}", "[green]yes[/]" if r.Class == 1 else "no")
    if s.alerts.empty:
        t.add_row("(no alerts yet)", "", "", "", "")
    return t


def query_table(s: Snapshot) -> Table:
    t = Table(title="Queries (rows/s, batch ms: last batch with rows; avg ms: last 10)", expand=True, box=box.SIMPLE_HEAD)
    t.add_column("query", no_wrap=True, min_width=22)
    for col in ("batches", "rows", "rows/s", "batch ms", "avg ms"):
        t.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for name, q in s.queries.items():
        t.add_row(name, f"{q['batches']:,}", f"{q['rows']:,}", f"{q['rows_per_s']:,.0f}",
                  "-" if q["last_ms"] is None else f"{q['last_ms']:,}",
                  "-" if q["avg_ms"] is None else f"{q['avg_ms']:,.0f}")
    if not s.queries:
        t.add_row("(no batch yet: Spark is starting the queries)", "", "", "", "", "")
    return t


def render(s: Snapshot, header: str | None = None, width: int = 120) -> Group:
    counts = Text.assemble(("rejected records: ", "bold"), (f"{s.rejected:,}", "yellow" if s.rejected else ""),
                           ("   late transactions left out of the KPIs (kept): " if s.late_kept
                            else "   late records dropped from the KPIs (Spark's count): ", "bold"),
                           (f"{s.late:,}", "yellow" if s.late else ""))
    parts = [Panel(Text.from_markup(header), title="fraud-stream", border_style="cyan", box=box.ROUNDED,
                   padding=(0, 1))] if header else []
    parts.append(kpi_table(s))
    if width >= SIDE_BY_SIDE_WIDTH:
        grid = Table.grid(expand=True, padding=(0, 2))
        grid.add_column(ratio=9)
        grid.add_column(ratio=11)
        grid.add_row(alert_table(s), query_table(s))
        parts.append(grid)
    else:
        parts += [alert_table(s), query_table(s)]
    parts.append(counts)
    return Group(*parts)


def run(project, *, refresh_s: float = 2.0, once: bool = False, console: Console | None = None,
        duration_s: float | None = None) -> Snapshot:
    """Show the dashboard until Ctrl-C (or duration_s); `once` prints one snapshot and returns."""
    console = console or Console()
    feed = Feed(project)
    snap = feed.snapshot()
    if once:
        console.print(render(snap, f"project {project.root}  (one snapshot)", console.width))
        return snap
    deadline = time.monotonic() + duration_s if duration_s else None
    with contextlib.suppress(KeyboardInterrupt), \
            Live(render(snap, width=console.width), console=console, refresh_per_second=4, screen=False) as live:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(refresh_s)
            snap = feed.snapshot()
            live.update(render(snap, f"project {project.root}  (refresh every {refresh_s:g}s, Ctrl-C to quit)",
                               console.width))
    return snap
