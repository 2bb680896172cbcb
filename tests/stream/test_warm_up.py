"""`runner apply --warm-up`: the micro-batch queries run their own plans over scratch records
before the first real one, and nothing real is read or written (runner/stream/warm_up.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import RunnerError
from runner.stream import apply as runtime
from runner.stream import topology, warm_up
from runner.stream.kafka_clients import end_offsets


def _setup(sp):
    project, manifest = sp.load(), sp.compile()
    plans = runtime.plan(project, manifest)
    runtime.preflight(project, plans)
    return project, manifest, plans


def test_scratch_plans_run_the_readers_only_with_no_sink_outside_the_scratch_folder(stream_project, tmp_path):
    project, manifest, plans = _setup(stream_project)
    warm, scratch_plans = warm_up.scratch_plans(project, manifest, plans, tmp_path)
    kinds = {p.query.kind for p in scratch_plans}
    assert kinds == {topology.MIRROR, topology.STATEFUL}
    assert {p.spec.sink["kind"] for p in scratch_plans} == {"parquet", "noop"}   # console and Kafka: noop
    for p in scratch_plans:
        assert str(p.checkpoint).startswith(str(tmp_path))
        if p.spec.sink["kind"] == "parquet":
            assert p.spec.location.startswith(str(tmp_path)) and p.spec.sink.get("rows") != "late"
    # the same queries, by name, as the real run starts after it
    assert {p.group for p in scratch_plans} == {p.group for p in plans if p.query.kind != topology.ROUTE}


def test_warm_up_runs_every_reader_over_scratch_records_and_touches_nothing_real(spark, stream_project):
    project, manifest, plans = _setup(stream_project)
    topics = sorted(project.topics)
    before = end_offsets(stream_project.kafka, topics)
    steps = []
    ran = warm_up.run(spark, project, manifest, plans, batches=3, on_step=steps.append)
    # each reader ran a batch per scratch file with rows for it: the KPIs and the rejected
    # records (every 50th scratch record is malformed) in every one
    kpi = next(p.group for p in plans if p.query.kind == topology.STATEFUL)
    rejected = next(p.group for p in plans if p.query.kind == topology.MIRROR and p.spec.model == "rejected_transactions")
    assert ran[kpi] == 3 and ran[rejected] == 3, ran
    assert steps[-1].startswith("warm-up: done in"), steps
    # nothing real: no record on any of the project's topics, no checkpoint, no output, no scratch left
    assert end_offsets(stream_project.kafka, topics) == before
    for root in (Path(project.checkpoint_root), Path(project.output_root)):
        assert not root.exists() or not any(root.rglob("*")), sorted(root.rglob("*"))
    assert not list(project.runtime_dir.glob("warm-up-*"))
    assert not spark.streams.active


def test_warm_up_refuses_a_cluster_master(spark, stream_project):
    stream_project.raw["targets"]["local"]["master"] = "spark://127.0.0.1:7077"
    stream_project.write()
    project, manifest, plans = _setup(stream_project)
    with pytest.raises(RunnerError, match="local master only"):
        warm_up.run(spark, project, manifest, plans, batches=1)
