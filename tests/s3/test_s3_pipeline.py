"""The pipeline with checkpoint_root and output_root on S3 (moto's server, through Hadoop's S3A
connector): end to end against the batch reference, the same check the HDFS roots pass, then what
only an object store has: outputs committed without a rename (markers, or Spark's file sink log)."""
from __future__ import annotations

from motos3 import MotoS3
from storecheck import apply_matches_reference_and_status_and_audit_read_it

from runner.stream import batches, storage


def test_apply_on_s3_matches_batch_reference_and_status_and_audit_read_it(spark, s3_project, lr_model):
    sp = s3_project
    # status and audit run as CLI verbs without a session: their own JVM, the target's spark_conf,
    # and the keys from the environment, as on a real deployment.
    apply_matches_reference_and_status_and_audit_read_it(spark, sp, lr_model, rows=3000, seed=41, prefix="s1",
                                                         env=MotoS3.credentials_env())

    # Nothing on S3 was committed by a rename: the foreachBatch Parquet sink (the KPIs) put one
    # marker per batch over an attempt folder, Spark's file sink (the alerts) logged its files in
    # _spark_metadata; no batch=N folder and no _tmp_ leftover of the rename commit.
    outputs_root = storage.path(f"{sp.store_base}/output")
    kpis = batches.committed_dirs(outputs_root / "kpis")
    assert kpis and all(d.parent.name == batches.ATTEMPTS for d in kpis), kpis
    assert (outputs_root / "alerts" / "_spark_metadata").is_dir()
    names = {p.name for folder in outputs_root.iterdir() for p in folder.iterdir()}
    assert not {n for n in names if n.startswith(("batch=", "_tmp_"))}, names
