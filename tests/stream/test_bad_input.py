"""Bad input on the real broker: N valid + M malformed records of every kind issue 6 lists, plus a
few thousand fuzzed ones, mixed over several micro-batches (maxOffsetsPerTrigger), one
`apply --available-now`. Every record is either scored or rejected with its reason, exactly once.

One apply is shared by every test of the module (it is the slow part).
"""
from __future__ import annotations

import base64
import json
import os
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from streamkit import StreamProject, apply_in_process, read_topic

from runner.compile.project import load_project
from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate

START = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
MAX_BYTES = 4096          # project.yml raw_value_max_bytes
BIG = 1_000_000           # "1 MB": just under the broker's default max.message.bytes (1048588)
N_VALID = 1500
N_FUZZ_BYTES = 1500
N_FUZZ_JSON = 1500
# The fields a producer sends: project.yml's source schema (the one place they are listed).
FIELDS = list(load_project(Path(__file__).resolve().parents[2]).sources["transactions"].schema)


def catalogue(base: dict) -> list[tuple[str, bytes | None, str | None]]:
    """(label, value, expected reason or None for 'scored') for every kind the issue lists."""
    def obj(**changes) -> bytes:
        rec = dict(base, txn_id=f"bad-{uuid.uuid4().hex[:8]}")
        for k, v in changes.items():
            if v is _DROP:
                rec.pop(k, None)
            else:
                rec[k] = v
        return json.dumps(rec, allow_nan=True).encode()

    good = json.dumps(base).encode()
    return [
        ("not json", b"hello, this is not json", "not_json"),
        ("truncated json", good[: len(good) // 2], "not_json"),
        ("json array", b"[1, 2, 3]", "not_object"),
        ("json scalar number", b"42", "not_object"),
        ("json scalar string", b'"a string"', "not_object"),
        ("string where a number goes", obj(V3="abc"), "bad_type"),
        ("quoted number", obj(Amount="12.5"), "bad_type"),
        ("boolean where a number goes", obj(V7=True), "bad_type"),
        ("missing event_time", obj(event_time=_DROP), "missing_event_time"),
        ("unparseable event_time", obj(event_time="yesterday at noon"), "bad_event_time"),
        ("missing txn_id", obj(txn_id=_DROP), "missing_txn_id"),
        ("empty txn_id", obj(txn_id="  "), "missing_txn_id"),
        ("missing V5", obj(V5=_DROP), "missing_feature"),
        ("missing Amount", obj(Amount=_DROP), "missing_feature"),
        ("NaN", obj(V1=float("nan")), "non_finite"),
        ("Infinity", obj(V2=float("inf")), "non_finite"),
        ("1e400", obj(V4=1.0).replace(b'"V4": 1.0', b'"V4": 1e400'), "non_finite"),
        ("null Kafka value", None, "null_value"),
        ("empty value", b"", "empty_value"),
        ("1 MB value", b"x" * BIG, "not_json"),
        ("invalid UTF-8", b'\xff\xfe{"txn_id": "\xc3\x28"}', "invalid_utf8"),
        ("extra unknown fields", obj(extra_field=1, nested={"a": [1, 2]}), None),
    ]


_DROP = object()
# Every reason the staging model gives (sql/staging/stg_parsed.sql).
REASONS = {"null_value", "empty_value", "invalid_utf8", "not_json", "not_object", "bad_type", "missing_event_time",
           "bad_event_time", "missing_txn_id", "missing_feature", "non_finite"}


def fuzz(rng: random.Random, base: dict) -> list[bytes]:
    """Random byte strings, and JSON objects with the right keys and random (mostly wrong) values."""
    out = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 120))) for _ in range(N_FUZZ_BYTES)]
    wrong = [None, "", "x", "1.5", "NaN", True, False, [], {}, [1.0], {"a": 1}, 1e308, -0.0, 7,
             "2026-13-45T99:99:99Z", "Infinity"]
    keys = FIELDS
    for i in range(N_FUZZ_JSON):
        rec = dict(base, txn_id=f"fz-{i}")
        for k in rng.sample(keys, rng.randint(0, 4)):
            rec[k] = rng.choice(wrong)
        out.append(json.dumps(rec, allow_nan=True).encode())
    return out


@pytest.fixture(scope="module")
def bad_run(spark, broker, lr_model, tmp_path_factory):
    sp = StreamProject(tmp_path_factory.mktemp("bad") / "project", broker, lr_model)
    # Own rejected topic, so this test reads only its records; small batches, so the
    # malformed records are spread over several of them.
    rejected_topic = f"rejected_{uuid.uuid4().hex[:8]}"
    sp.edit_sql("staging/rejected_transactions.sql", "'topic': 'transactions_rejected'", f"'topic': '{rejected_topic}'")
    sp.raw["topics"][rejected_topic] = {"partitions": 1}
    sp.raw["sources"]["kafka"]["transactions"]["options"]["maxOffsetsPerTrigger"] = "1000"
    sp.write()
    from runner.stream.kafka_clients import ensure_topics
    ensure_topics(sp.kafka, sp.load().topics)

    rng = random.Random(6)
    valid = replay.records(generate(N_VALID, seed=21), start=START, id_prefix="ok")
    base = json.loads(valid[0][1])
    cases = catalogue(base)
    # (label, key, value, expected): valid ones, one duplicate txn_id, the catalogue, the fuzz.
    sends = [("valid", k, v, None) for k, v in valid]
    sends.append(("duplicate txn_id", valid[3][0], valid[3][1], None))
    # kafka-python sends a null value only with a key; the malformed ones get keys too.
    sends += [(label, f"case-{i}".encode(), value, reason) for i, (label, value, reason) in enumerate(cases)]
    sends += [("fuzz", f"fuzz-{i}".encode(), v, "?") for i, v in enumerate(fuzz(rng, base))]
    rng.shuffle(sends)

    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, max_request_size=BIG + 4096)
    futures = [producer.send(sp.topic, key=k, value=v) for _, k, v, _ in sends]
    producer.flush(timeout=120)
    meta = [f.get(timeout=60) for f in futures]
    producer.close()
    sent = {(m.partition, m.offset): s for m, s in zip(meta, sends)}
    assert len(sent) == len(sends)

    plans, result = apply_in_process(spark, sp, timeout_s=400)
    return sp, sent, result, scored_rows(spark, sp), rejected_topic


def scored_rows(spark, sp: StreamProject):
    """Every scored row (alert or not): the compiled models evaluated in batch over the same topic,
    exact (the streamed alerts are checked against it below)."""
    from runner.stream import apply as runtime
    from runner.stream import sources

    project, manifest = sp.load(), sp.compile()
    (spark.read.format("kafka").option("kafka.bootstrap.servers", sp.broker.bootstrap)
     .option("subscribe", sp.topic).option("startingOffsets", "earliest").load()
     .createOrReplaceTempView(sources.view_name("kafka", "transactions")))
    import udfs
    udfs.register(spark, project.model_path, project.sources["transactions"].schema)
    frames = runtime.create_views(spark, manifest)
    # scored_transactions holds every record; the scored ones are those without a reject_reason
    return (frames["scored_transactions"].where("reject_reason IS NULL")
            .select("txn_id", "is_alert", "kafka_partition", "kafka_offset").toPandas())


def _pos(df) -> list[tuple[int, int]]:
    return list(zip(df["kafka_partition"].astype(int), df["kafka_offset"].astype(int)))


def test_every_record_is_scored_or_rejected_exactly_once(bad_run):
    sp, sent, result, scored, _ = bad_run
    assert result.exit_code == 0 and result.stopped_by == "available-now", result
    rejected = outputs.read(sp.output("rejected"))
    scored_pos, rejected_pos = _pos(scored), _pos(rejected)
    assert len(scored_pos) == len(set(scored_pos)) and len(rejected_pos) == len(set(rejected_pos))
    both = sorted(set(scored_pos) & set(rejected_pos))
    assert not both, [(p, sent[p][0], sent[p][2][:80] if sent[p][2] else None,
                       rejected[[q == p for q in rejected_pos]].to_dict("records"),
                       scored[[q == p for q in scored_pos]].to_dict("records")) for p in both[:3]]
    assert set(scored_pos) | set(rejected_pos) == set(sent)           # valid + rejected == sent, exactly
    # The streamed alerts are exactly the alerts among the scored rows, none of them rejected.
    alerts = outputs.read(sp.output("alerts"))
    assert sorted(_pos(alerts)) == sorted(p for p, a in zip(scored_pos, scored["is_alert"]) if a)
    # No valid record is rejected (a parse that is too strict), and every rejected one has a known reason.
    assert not [sent[p][0] for p in rejected_pos if sent[p][3] is None]
    assert set(rejected["reason"]) <= REASONS, set(rejected["reason"]) - REASONS
    # several micro-batches per query
    progress = (sp.root / ".runtime" / "progress" / "scored_transactions__topics.jsonl").read_text().splitlines()
    assert sum(1 for line in progress if json.loads(line)["numInputRows"]) >= 4


def test_valid_records_are_all_scored(bad_run):
    sp, sent, _, scored, _ = bad_run
    expected_valid = {pos for pos, s in sent.items() if s[3] is None}
    n = N_VALID + 2                          # + the duplicate txn_id + the record with extra fields
    assert len(expected_valid) == n
    got = scored[[p in expected_valid for p in _pos(scored)]]
    assert len(got) == n
    assert got["is_alert"].notna().all()
    # Scored as sent: each valid record's own txn_id (the duplicate counts twice).
    sent_ids = sorted(json.loads(s[2])["txn_id"] for pos, s in sent.items() if pos in expected_valid)
    assert sorted(got["txn_id"]) == sent_ids
    # The duplicate txn_id is scored both times (documented in README "Bad input").
    assert (scored["txn_id"] == "ok-00000003").sum() == 2


def test_each_malformed_kind_is_rejected_with_its_reason_and_raw_value(bad_run):
    sp, sent, _, _, _ = bad_run
    rejected = outputs.read(sp.output("rejected"))
    by_pos = {pos: row for pos, row in zip(_pos(rejected), rejected.to_dict("records"))}
    catalogued = {pos: s for pos, s in sent.items() if s[3] not in (None, "?")}
    for pos, (label, _, value, reason) in catalogued.items():
        row = by_pos.get(pos)
        assert row is not None, f"{label} was not rejected"
        assert row["reason"] == reason, (label, row["reason"])
        assert not pd.isna(row["kafka_timestamp"]), label
        if value is None:
            assert pd.isna(row["raw_value"]) and pd.isna(row["raw_length"]), label
            continue
        assert int(row["raw_length"]) == len(value), label
        head = value[:MAX_BYTES]
        if reason == "invalid_utf8":
            assert base64.b64decode(row["raw_value"]) == head, label
        else:
            assert row["raw_value"] == head.decode(), label
    big = next(by_pos[p] for p, s in catalogued.items() if s[0] == "1 MB value")
    assert len(big["raw_value"]) == MAX_BYTES and big["raw_length"] == BIG


def test_rejected_records_are_on_kafka_too(bad_run):
    sp, _, _, _, topic = bad_run
    rejected = outputs.read(sp.output("rejected"))
    values = [json.loads(m.value) for m in read_topic(sp.broker.bootstrap, topic, max_partition_fetch_bytes=16 << 20)]
    on_kafka = {(v["kafka_partition"], v["kafka_offset"]): v["reason"] for v in values}
    in_parquet = dict(zip(_pos(rejected), rejected["reason"]))
    assert len(in_parquet) > len(catalogue({"txn_id": "x"})) - 1   # the catalogue and some fuzz, not nothing
    assert on_kafka == in_parquet            # the Kafka sink is at-least-once: compare as sets


def test_status_and_audit_show_counts_by_reason(bad_run):
    sp, _, _, _, _ = bad_run
    counts = outputs.read(sp.output("rejected"))["reason"].value_counts().to_dict()
    assert {"not_json", "not_object", "bad_type", "invalid_utf8", "empty_value", "null_value"} <= set(counts)
    env = {**os.environ, "COLUMNS": "200"}
    status = sp.cli("status", env=env, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    text = " ".join(status.stdout.split())          # rich may wrap the line
    line = text[text.index("rejected records:"):]
    line = line.split(" late rows of ")[0]               # the next line of status: the late rows kept
    for reason, n in counts.items():
        assert f" {reason} {n}," in line + ",", (reason, n, line)
    audit = sp.cli("audit", env=env, timeout=120)
    assert audit.returncode == 0, audit.stderr[-2000:]
    for reason, n in counts.items():
        assert any(f"rejected: {reason}" in line and line.rstrip(" │|").split()[-1] == str(n)
                   for line in audit.stdout.splitlines()), (reason, n, audit.stdout)
