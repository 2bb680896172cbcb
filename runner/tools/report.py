"""The run report: three PNG plots and a short report.md with the numbers.

- precision and recall against the alert threshold (the model card's threshold table),
- alerts and true frauds per minute over event time (the KPI Parquet sink),
- batch latency over the run, per query (the progress logs).

Reads files only (model card, committed Parquet, progress logs); no Spark, no Kafka.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from runner.errors import RunnerError
from runner.stream import late_rows, outputs
from runner.stream.progress import parquet_sinks, parse_time, read_all

THRESHOLD_PNG = "threshold_precision_recall.png"
KPI_PNG = "alerts_per_minute.png"
LATENCY_PNG = "batch_latency.png"
REPORT_MD = "report.md"
EXERCISE_THRESHOLDS = (0.7, 0.8, 0.9, 0.95)


@dataclass
class Report:
    folder: Path
    pngs: list[Path]
    markdown: Path
    numbers: dict = field(default_factory=dict)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- plots

def threshold_plot(card: dict, chosen: float | None, path: Path) -> None:
    plt = _plt()
    table = sorted(card.get("threshold_table") or [], key=lambda r: r["threshold"])
    fig, ax = plt.subplots(figsize=(8, 5.2))
    if not table:
        _empty(ax, "the model card has no threshold table")
    else:
        t = [r["threshold"] for r in table]
        for key, colour, marker in (("precision", "tab:blue", "o"), ("recall", "tab:orange", "s"),
                                    ("f1", "tab:green", "^")):
            y = [r[key] if r[key] is not None else float("nan") for r in table]
            ax.plot(t, y, marker=marker, color=colour, label=key, linewidth=2,
                    alpha=1.0 if key != "f1" else 0.6, linestyle="-" if key != "f1" else "--")
        for r in table:
            ax.annotate(f"{r['alerts']:,} alerts", (r["threshold"], 0.02), ha="center", fontsize=8, color="0.4")
        if chosen is not None:
            ax.axvline(chosen, color="tab:red", linestyle=":", linewidth=1.5, label=f"threshold in use ({chosen:g})")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("alert threshold (fraud_prob >= threshold)")
        ax.set_ylabel("on the model's test part")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, frameon=False)
        ax.set_xticks(t)
    name = card.get("name", "model")
    pr_auc = (card.get("metrics") or {}).get("pr_auc")
    ax.set_title(f"Precision and recall against the threshold: {name}"
                 + (f" (PR-AUC {pr_auc:.3f})" if pr_auc is not None else ""))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def kpi_plot(kpis: pd.DataFrame, path: Path) -> None:
    plt = _plt()
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True,
                                           gridspec_kw={"height_ratios": [1, 1.6, 1.6]})
    if kpis.empty:
        _empty(top, "no closed KPI windows yet")
        _empty(mid, "(a window is written once the watermark passes its end)")
        _empty(bottom, "")
    else:
        k = kpis.sort_values("window_start")
        x = pd.to_datetime(k["window_start"])
        width = (x.diff().median() if len(x) > 1 else pd.Timedelta(minutes=1)) * 0.45
        top.plot(x, k["n_txn"], color="0.3", linewidth=1.0, drawstyle="steps-post")
        top.set_ylabel("transactions")
        top.set_title("Per minute of event time")
        mid.bar(x - width / 2, k["n_alert"], width=width, color="tab:red", label="alerts", align="center")
        mid.bar(x + width / 2, k["n_fraud_true"], width=width, color="tab:blue", label="true frauds",
                align="center")
        hits = k[k["tp"] > 0]
        mid.scatter(pd.to_datetime(hits["window_start"]), hits["tp"] + 0.25, marker="v", color="black",
                    s=14, label="alert on a true fraud (TP)", zorder=3)
        mid.set_ylabel("per minute")
        mid.legend(loc="upper right", fontsize=8)
        top_y = max(int(k["n_alert"].max()), int(k["n_fraud_true"].max()), 1)
        mid.set_ylim(0, top_y + 1)
        mid.yaxis.get_major_locator().set_params(integer=True)
        for col, colour, label in (("n_alert", "tab:red", "alerts"), ("n_fraud_true", "tab:blue", "true frauds"),
                                   ("tp", "black", "TP"), ("fp", "tab:orange", "FP")):
            bottom.plot(x, k[col].cumsum(), color=colour, label=label, linewidth=1.8, drawstyle="steps-post")
        tp, fp, frauds = int(k["tp"].sum()), int(k["fp"].sum()), int(k["n_fraud_true"].sum())
        bottom.set_title(f"Cumulative: precision {_pct(_ratio(tp, tp + fp))}, recall {_pct(_ratio(tp, frauds))} "
                         f"over {len(k)} closed windows", fontsize=10)
        bottom.set_ylabel("so far")
        bottom.set_xlabel("event time (window start, UTC)")
        bottom.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def latency_plot(batches: dict[str, list[dict]], path: Path) -> None:
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    points = {q: [(parse_time(b["timestamp"]), b) for b in rows if parse_time(b["timestamp"])]
              for q, rows in sorted(batches.items()) if not any(b.get("realtime") for b in rows)}
    points = {q: p for q, p in points.items() if p}
    if not points:
        _empty(top, "no batches recorded yet")
        _empty(bottom, "(apply writes .runtime/progress/<query>.jsonl)")
    else:
        t0 = min(p[0][0] for p in points.values())
        for q, p in points.items():
            x = [(t - t0).total_seconds() for t, _ in p]
            top.plot(x, [b["duration_ms"] / 1000 for _, b in p], marker=".", linewidth=1, label=q)
            with_rows = [(xx, b) for xx, (_, b) in zip(x, p) if b["rows"]]
            bottom.plot([xx for xx, _ in with_rows], [b["rows"] for _, b in with_rows], marker=".", linewidth=1)
        top.set_ylabel("batch latency (s)")
        top.set_yscale("log")
        top.set_title("Batch latency over the run (the first batches include query planning)")
        bottom.set_ylabel("rows per batch")
        bottom.set_xlabel("seconds since the first batch started")
        handles, labels = top.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(labels) + 3) // 4), 1, 1))
        fig.savefig(path)
        plt.close(fig)
        return
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- numbers

def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def kpi_totals(kpis: pd.DataFrame) -> dict:
    if kpis.empty:
        return {"windows": 0, "n_txn": 0, "n_alert": 0, "n_fraud_true": 0, "tp": 0, "fp": 0,
                "precision": None, "recall": None}
    s = {c: int(kpis[c].sum()) for c in ("n_txn", "n_alert", "n_fraud_true", "tp", "fp")}
    return {"windows": len(kpis), **s, "precision": _ratio(s["tp"], s["tp"] + s["fp"]),
            "recall": _ratio(s["tp"], s["n_fraud_true"])}


def latency_stats(batches: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for q, rows in sorted(batches.items()):
        if any(b.get("realtime") for b in rows):
            continue   # a Real-time Mode "batch" is its checkpoint interval; `make bench` measures its per-record latency
        busy = [b for b in rows if b["rows"]]
        ms = sorted(b["duration_ms"] for b in busy)
        out[q] = {"batches": len(rows), "rows": sum(b["rows"] for b in rows),
                  "median_ms": int(round(statistics.median(ms))) if ms else None,
                  "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))] if ms else None,
                  "max_ms": ms[-1] if ms else None,
                  "late_rows": sum(b["late_rows"] for b in rows)}
    return out


def _read_card(project) -> dict:
    f = project.model_path / "model_card.json"
    if not f.exists():
        raise RunnerError(f"no model card at {f}", where=str(project.file),
                          hint="train a model first: runner train --synthetic 50000")
    return json.loads(f.read_text())


def build(project, out_dir: str | Path | None = None, *, title: str = "fraud-stream run report",
          notes: list[str] | None = None, manifest=None) -> Report:
    """Write the three PNGs and report.md into out_dir (default: output/report in the project)."""
    folder = Path(out_dir) if out_dir else project.root / "output" / "report"
    folder.mkdir(parents=True, exist_ok=True)
    card = _read_card(project)
    chosen = project.vars["threshold"].value if "threshold" in project.vars else None
    from runner.compile.compiler import current_manifest
    from runner.tools.audit import late_rows_locations

    # read-only: a stale target/manifest.json is recompiled in memory, never rewritten
    manifest = manifest or current_manifest(project, write=False)
    paths = parquet_sinks(project, manifest)
    kept_late = late_rows_locations(project, manifest).get("kpi_per_minute")
    kpis = outputs.read(paths["kpi_per_minute"]) if "kpi_per_minute" in paths else pd.DataFrame()
    alerts = (outputs.read(paths["fraud_alerts"], columns=["txn_id", "Class"])
              if "fraud_alerts" in paths else pd.DataFrame())
    rejected = (outputs.read(paths["rejected_transactions"], columns=["reason"])
                if "rejected_transactions" in paths else pd.DataFrame())
    batches = read_all(project.runtime_dir / "progress")

    threshold_plot(card, float(chosen) if chosen is not None else None, folder / THRESHOLD_PNG)
    kpi_plot(kpis, folder / KPI_PNG)
    latency_plot(batches, folder / LATENCY_PNG)

    totals = kpi_totals(kpis)
    lat = latency_stats(batches)
    n_alerts = int(alerts["txn_id"].nunique()) if not alerts.empty else 0
    n_alert_frauds = int(alerts.drop_duplicates("txn_id")["Class"].eq(1).sum()) if not alerts.empty else 0
    # exact where the KPIs keep their late rows (late_transactions); else Spark's count in the progress
    late = late_rows.count(kept_late) if kept_late else max((v["late_rows"] for v in lat.values()), default=0)
    reasons = rejected["reason"].value_counts().to_dict() if not rejected.empty else {}
    numbers = {"kpis": totals, "alerts": n_alerts, "alerts_on_frauds": n_alert_frauds,
               "rejected": int(len(rejected)), "rejected_reasons": reasons, "late_rows": late, "latency": lat,
               "pr_auc": (card.get("metrics") or {}).get("pr_auc"), "threshold": chosen}

    md = [f"# {title}", ""]
    md += [f"- {n}" for n in (notes or [])]
    if notes:
        md.append("")
    md += ["## Model: precision and recall against the threshold", "",
           f"Model `{card.get('name')}` ({card.get('kind')}), trained on {card.get('data', {}).get('source', '?')} "
           f"data; PR-AUC {_pct(numbers['pr_auc'])}, ROC-AUC {_pct((card.get('metrics') or {}).get('roc_auc'))} "
           f"on its test part. The streams alert at fraud_prob >= {chosen}.", "",
           f"![precision and recall against the threshold]({THRESHOLD_PNG})", "",
           "| threshold | alerts | TP | FP | precision | recall | F1 |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(card.get("threshold_table") or [], key=lambda r: r["threshold"]):
        md.append(f"| {r['threshold']:.2f} | {r['alerts']:,} | {r['tp']:,} | {r['fp']:,} | "
                  f"{_pct(r['precision'])} | {_pct(r['recall'])} | {_pct(r['f1'])} |")
    md += ["", "## The stream: alerts and true frauds per minute", "",
           f"![alerts and true frauds per minute]({KPI_PNG})", "",
           f"{totals['windows']} closed one-minute windows: {totals['n_txn']:,} transactions, "
           f"{totals['n_alert']:,} alerts, {totals['n_fraud_true']:,} true frauds, TP {totals['tp']:,}, "
           f"FP {totals['fp']:,}; precision {_pct(totals['precision'])}, recall {_pct(totals['recall'])}.",
           "",
           f"Alerts written (all, including windows not closed yet): {n_alerts:,}, of them on true frauds: "
           f"{n_alert_frauds:,}. Rejected records: {numbers['rejected']:,}"
           + (f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())})" if reasons else "")
           + (f". Late transactions left out of the KPIs (kept in {kept_late}): {late:,}." if kept_late
              else f". Late records left out of the KPIs (Spark's count): {late:,}."),
           "", "## Batch latency", "", f"![batch latency over the run]({LATENCY_PNG})", "",
           "| query | batches | rows | median batch (ms) | p95 batch (ms) | max batch (ms) |",
           "|---|---:|---:|---:|---:|---:|"]
    for q, v in lat.items():
        ms = {k: "n/a" if v[k] is None else v[k] for k in ("median_ms", "p95_ms", "max_ms")}
        md.append(f"| {q} | {v['batches']:,} | {v['rows']:,} | {ms['median_ms']} | {ms['p95_ms']} | {ms['max_ms']} |")
    md += ["", "Batch latency is Spark's `triggerExecution` per batch with rows (from .runtime/progress/). The "
           "route query in Real-time Mode is not listed: its batch is a checkpoint interval while records "
           "flow through it within milliseconds (`make bench` measures that per record).", ""]
    (folder / REPORT_MD).write_text("\n".join(md))
    return Report(folder, [folder / THRESHOLD_PNG, folder / KPI_PNG, folder / LATENCY_PNG], folder / REPORT_MD, numbers)
