"""Offline audit of what the Parquet sinks wrote: alerts, KPIs, rejected records."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from runner.stream import outputs, sinks, storage


def parquet_locations(project, manifest) -> dict[str, str]:
    """{model name: Parquet output folder} for every model with a Parquet sink (of its own rows)."""
    return {spec.model: spec.location for m in manifest.models for spec in sinks.specs(project, m)
            if spec.sink["kind"] == "parquet" and not sinks.is_late_rows(spec)}


def late_rows_locations(project, manifest) -> dict[str, str]:
    """{stateful model: the folder keeping the rows its watermark left out} (config late_rows)."""
    return {spec.model: spec.location for m in manifest.models for spec in sinks.specs(project, m)
            if sinks.is_late_rows(spec)}


@dataclass
class Audit:
    alerts: int = 0
    alerts_true_fraud: int = 0
    duplicate_alert_ids: int = 0
    kpi_windows: int = 0
    kpi_txn: int = 0
    kpi_alerts: int = 0
    kpi_frauds: int = 0
    kpi_tp: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    late_rows: int | None = None     # rows kept in late_transactions (None: the model keeps none)
    late_txn: int = 0                # distinct source offsets among them (a repeat after a crash counts once)

    @property
    def precision(self) -> float | None:
        return self.alerts_true_fraud / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        """Alerts that were true frauds over all true frauds the closed KPI windows counted."""
        return self.kpi_tp / self.kpi_frauds if self.kpi_frauds else None


def audit(project, manifest) -> Audit:
    storage.configure(project.target.spark_conf)   # outputs on hdfs:// or s3a:// are read with Spark's settings
    where = parquet_locations(project, manifest)
    a = Audit()
    if "fraud_alerts" in where:
        alerts = outputs.read(where["fraud_alerts"], ["txn_id", "Class"])
        a.alerts = len(alerts)
        a.alerts_true_fraud = int((alerts["Class"] == 1).sum()) if len(alerts) else 0
        a.duplicate_alert_ids = int(alerts["txn_id"].duplicated().sum()) if len(alerts) else 0
    if "kpi_per_minute" in where:
        kpis = outputs.read(where["kpi_per_minute"])
        if len(kpis):
            a.kpi_windows = len(kpis)
            a.kpi_txn, a.kpi_alerts = int(kpis["n_txn"].sum()), int(kpis["n_alert"].sum())
            a.kpi_frauds, a.kpi_tp = int(kpis["n_fraud_true"].sum()), int(kpis["tp"].sum())
    late = late_rows_locations(project, manifest).get("kpi_per_minute")
    if late is not None:
        kept = outputs.read(late, ["source_offset"])
        a.late_rows, a.late_txn = len(kept), int(kept["source_offset"].nunique()) if len(kept) else 0
    if "rejected_transactions" in where:
        rejected = outputs.read(where["rejected_transactions"], ["reason"])
        if len(rejected):
            a.rejected_by_reason = {str(k): int(v) for k, v in rejected["reason"].value_counts().sort_index().items()}
    return a


def frame(a: Audit) -> pd.DataFrame:
    rows = [("alert rows (Parquet)", a.alerts), ("  of which true frauds", a.alerts_true_fraud),
            ("  precision of alerts", a.precision), ("txn_ids appearing twice in alerts", a.duplicate_alert_ids),
            ("closed KPI windows", a.kpi_windows), ("  transactions in them", a.kpi_txn),
            ("  alerts in them", a.kpi_alerts), ("  true frauds in them", a.kpi_frauds),
            ("  recall (tp / true frauds)", a.recall)]
    if a.late_rows is not None:
        rows += [("late transactions, left out of the KPIs (kept)", a.late_rows)]
        if a.late_txn != a.late_rows:
            rows += [("  distinct source offsets among them", a.late_txn)]
    rows += [(f"rejected: {reason}", n) for reason, n in a.rejected_by_reason.items()]
    # dtype=object keeps counts as ints (a float column would print 1473 as 1473.0000)
    return pd.DataFrame(rows, columns=["what", "value"], dtype=object)
