"""The pipeline end to end with checkpoint_root and output_root on a store that is not the local disk
(HDFS, S3): one check, so every store is held to the same one. Only public entry points (apply
through its Python API, the CLI's status and audit, the runner's readers) and what they leave on
the store are used, not query or folder names."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Mapping

from streamkit import StreamProject, apply_in_process, reference_alerts

from runner.stream import checkpoints, outputs, storage
from runner.stream.status import query_status
from runner.tools import replay
from runner.tools.synth import generate

START = datetime(2026, 4, 2, 10, 0, tzinfo=timezone.utc)


def on_store(sp: StreamProject, base: str) -> StreamProject:
    """Point a StreamProject's checkpoint_root and output_root at folders under `base` (a URI on
    the store); `sp.store_base` is `base`."""
    sp.raw["targets"]["local"].update(checkpoint_root=f"{base}/checkpoints", output_root=f"{base}/output")
    sp.write()
    sp.store_base = base
    return sp


def apply_matches_reference_and_status_and_audit_read_it(spark, sp: StreamProject, model, *, rows: int, seed: int,
                                                         prefix: str, env: Mapping[str, str] | None = None) -> None:
    """`runner apply --available-now` on the shared session over `rows` replayed transactions: the
    Parquet alerts on the store are exactly the batch reference's, the KPIs are there, every
    checkpoint carries the runner's metadata and nothing went to the local disk; then `runner status`
    and `runner audit` (CLI runs, `env` added to their environment) read the same store."""
    base = sp.store_base
    data = generate(rows, seed=seed)
    assert replay.send(sp.kafka, sp.topic, data, start=START, id_prefix=prefix).sent == rows

    _, result = apply_in_process(spark, sp)
    assert result.exit_code == 0 and result.stopped_by == "available-now", result

    expected = reference_alerts(spark, model, data, prefix)
    assert len(expected) > 5, "the reference should have alerts for this test to mean anything"
    alerts = outputs.read(f"{base}/output/alerts")
    assert sorted(alerts["txn_id"]) == sorted(expected)              # exactly, and none twice
    assert len(outputs.read(f"{base}/output/kpis")) > 10             # closed windows, there too
    queries = list(storage.path(f"{base}/checkpoints").iterdir())
    assert queries and all(checkpoints.read_meta(q) for q in queries)
    assert not (sp.root / "checkpoints").exists() and not (sp.root / "output").exists()

    cli_env = {**os.environ, "COLUMNS": "400", **(env or {})}   # rich tables unfolded, to read the lines
    status = sp.cli("status", env=cli_env)
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    for q in queries:
        assert str(q) in status.stdout, f"{q} missing from status:\n{status.stdout}"
    by_query = query_status(sp.load())
    assert {str(s.checkpoint) for s in by_query} == {str(q) for q in queries}
    assert all(s.last_batch is not None and s.behind == 0 for s in by_query), by_query

    audit = sp.cli("audit", env=cli_env)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    found = re.search(r"alert rows \(Parquet\)\D*(\d+)", audit.stdout)
    assert found and int(found.group(1)) == len(expected), audit.stdout
    assert re.search(r"txn_ids appearing twice in alerts\D*0\b", audit.stdout), audit.stdout
