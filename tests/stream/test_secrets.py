"""Secrets in a target's kafka options (${env:NAME}) reach Spark and the runner's own clients, and are
never written: not to target/ (manifest, compiled SQL), .runtime/ (progress JSON), checkpoints
(runner.json, Spark's metadata, offsets, sources/), outputs, nor the CLI's output."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from streamkit import StreamProject

from runner.stream import outputs
from runner.stream.kafka_clients import client_config
from runner.stream.sources import spark_kafka_options

ENV = "FRAUD_TEST_KAFKA_SECRET"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_kafka_secrets_pass_through_and_never_leak(stream_project: StreamProject):
    sp = stream_project
    secret = f"pw-{uuid.uuid4().hex}"
    env = {**os.environ, ENV: secret}
    # Options that carry a secret but leave a PLAINTEXT connection as it is: the SSL passwords
    # and SASL's JAAS line are only read for SSL / SASL_* protocols, by Spark and kafka-python alike.
    sp.raw["targets"]["local"]["kafka"].update({
        "ssl.truststore.password": f"${{env:{ENV}}}",
        "ssl.key.password": f"${{env:{ENV}}}",
        "sasl.jaas.config": ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                             f'username="fraud" password="${{env:{ENV}}}";'),
        "request.timeout.ms": "20000",
    })
    sp.write()
    assert secret not in (sp.root / "project.yml").read_text()

    # The secret is live: resolved into Spark's source/sink options and the Python clients' config.
    os.environ[ENV] = secret
    try:
        project = sp.load()
        spark_opts = spark_kafka_options(project)
        assert spark_opts["kafka.ssl.truststore.password"] == secret
        assert secret in spark_opts["kafka.sasl.jaas.config"]
        assert client_config(project.target.kafka_options())["ssl_password"] == secret
    finally:
        del os.environ[ENV]

    runs = [sp.cli("replay", "--synthetic", "600", "--seed", "3", "--start", "2026-01-05T09:00:00Z",
                   env=env, timeout=120),
            sp.cli("apply", "--available-now", env=env, timeout=600),
            sp.cli("status", env=env, timeout=120)]
    for r in runs:
        assert r.returncode == 0, r.args[3:] + [r.stdout[-3000:], r.stderr[-3000:]]
    assert "sent 600" in runs[0].stdout and "stopped (available-now)" in runs[1].stdout
    # Where each query keeps its checkpoint and progress (a query may serve several sinks).
    from runner.stream import apply as runtime
    plans = runtime.plan(sp.load(), sp.compile())
    queries = sorted({p.checkpoint.relative_to(sp.root).as_posix() for p in plans})
    assert "rejected records: none" in runs[2].stdout, runs[2].stdout   # status ran to its end
    assert len(outputs.read(sp.output("rejected"))) == 0 and len(outputs.read(sp.output("kpis"))) > 0

    # Everything the runs wrote is where the grep looks.
    written = files_under(sp.root)
    names = {p.relative_to(sp.root).as_posix() for p in written}
    assert "target/manifest.json" in names
    for q in queries:
        for expected in ("runner.json", "metadata", "offsets/0", "sources/0/0"):
            assert f"{q}/{expected}" in names, (q, expected, sorted(names)[:60])
        assert f".runtime/progress/{q.split('/')[-1]}.jsonl" in names, sorted(names)[:60]
    assert any(n.startswith("target/compiled/") for n in names)
    assert any(n.startswith("output/kpis/") and n.endswith(".parquet") for n in names)

    needle = secret.encode()
    leaked = [p for p in written if needle in p.read_bytes()]
    assert leaked == []
    for r in runs:
        assert secret not in r.stdout and secret not in r.stderr
