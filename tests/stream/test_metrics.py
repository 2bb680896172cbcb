"""The Prometheus endpoint of a running apply (runner/stream/metrics.py), scraped during a real run
on the test broker and parsed with prometheus_client's own parser; and, where Debian's
`prometheus` is installed, a real Prometheus server scraping it and answering through its HTTP API.

The first test needs no run. One
run is shared by the others: a few hundred transactions (every fraud of a synthetic sample,
so there are alerts) and five malformed records of three reasons, through the whole pipeline.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families
from streamkit import StreamProject

from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate

BAD = {b"not json at all": "not_json", b"{truncated": "not_json", b"[1, 2]": "not_object", b"42": "not_object",
       b'{"event_time": "2026-01-01T00:00:00Z", "V1": 1.0}': "missing_txn_id"}
BAD_REASONS = {"not_json": 2, "not_object": 2, "missing_txn_id": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}}, parsed by prometheus_client's parser."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def send_input(sp: StreamProject) -> int:
    """Every fraud of a synthetic sample plus the first 300 rows, then BAD; returns the rows sent."""
    rows = generate(20000, seed=5)
    rows = rows[(rows["Class"] == 1) | (rows.index < 300)].reset_index(drop=True)
    rows["Time"] = (rows["Time"] - rows["Time"].min()) / 60   # a few minutes of event time, not hours
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=sp.broker.bootstrap, linger_ms=20)
    for key, value in replay.records(rows, start=start, id_prefix="met"):
        producer.send(sp.topic, key=key, value=value)
    for i, value in enumerate(BAD):
        producer.send(sp.topic, key=f"bad-{i}".encode(), value=value)
    producer.flush(timeout=60)
    producer.close()
    return len(rows)


def test_the_flag_and_the_target_key_reach_the_endpoint(stream_project):
    """`runner apply --metrics-port` and a target's metrics_port both bind the endpoint (a port that is
    taken is refused before Spark starts, which makes this cheap)."""
    sp = stream_project
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        by_flag = sp.cli("apply", "--metrics-port", str(port), "--timeout", "1", "--quiet", timeout=120)
        sp.raw["targets"]["local"]["metrics_port"] = port
        sp.write()
        by_target = sp.cli("apply", "--timeout", "1", "--quiet", timeout=120)
    for result in (by_flag, by_target):
        assert result.returncode == 1, (result.stdout[-1500:], result.stderr[-1500:])
        assert f"can not serve metrics on 127.0.0.1:{port}" in result.stdout + result.stderr


class LiveRun:
    """`runner apply` with metrics served, running in a thread until the module's tests are done."""

    def __init__(self, spark, sp: StreamProject):
        from runner.stream import apply as runtime
        from runner.stream import metrics

        self.sp, self.port = sp, free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        project, manifest = sp.load(), sp.compile()
        self.plans = runtime.plan(project, manifest)
        runtime.preflight(project, self.plans)
        self.stop = threading.Event()
        self.result = None
        self._open = contextlib.ExitStack()
        on_batch = self._open.enter_context(metrics.serving(project, manifest, self.plans, port=self.port,
                                                            host="127.0.0.1"))

        def run():
            self.result = runtime.run(spark, project, manifest, self.plans, timeout_s=240, stop_event=self.stop,
                                      on_batch=on_batch, realtime=False)
        self.thread = threading.Thread(target=run, name="apply", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        self._open.close()


@pytest.fixture(scope="module")
def live(spark, broker, lr_model, tmp_path_factory):
    sp = StreamProject(tmp_path_factory.mktemp("metrics") / "project", broker, lr_model)
    n = send_input(sp)
    run = LiveRun(spark, sp)
    try:
        # Until the Parquet sinks hold every alert and reject, as counted by the metrics (bounded).
        deadline, seen = time.monotonic() + 150, {}
        while time.monotonic() < deadline and run.thread.is_alive():
            seen = scrape(run.url)
            rejected = sum(seen.get("fraud_rejected_records_total", {}).values())
            kpi_read = seen.get("fraud_query_input_rows_total", {}).get((("query", "kpi_per_minute__sinks"),), 0)
            if rejected == len(BAD) and kpi_read == n:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the metrics never counted every record (last scrape: {json.dumps(seen, default=str)[:2000]}; "
                        f"run: {run.result})")
        yield run, n
    finally:
        run.close()


def test_scraped_counters_equal_what_the_run_wrote(live):
    run, n = live
    m = scrape(run.url)
    alerts = outputs.read(run.sp.output("alerts"), ["txn_id"])
    rejected = outputs.read(run.sp.output("rejected"), ["reason"])
    assert len(alerts) > 0
    assert m["fraud_alerts_total"][()] == len(alerts)
    assert {dict(k)["reason"]: v for k, v in m["fraud_rejected_records_total"].items()} == BAD_REASONS
    assert rejected["reason"].value_counts().to_dict() == BAD_REASONS
    sinks = {dict(k)["sink"]: v for k, v in m["fraud_sink_rows_written_total"].items()}
    # the Parquet mirrors (deduplicated rows), and the route query's topics as their readers read them
    assert sinks["fraud_alerts__parquet"] == sinks["fraud_alerts__kafka"] == len(alerts)
    assert sinks["rejected_transactions__parquet"] == sinks["rejected_transactions__kafka"] == len(BAD)
    assert sinks["kpi_events__topic"] == n


def test_per_query_gauges_and_the_model_card(live):
    run, n = live
    m = scrape(run.url)
    queries = {p.group for p in run.plans}
    for name in ("fraud_query_input_rows_per_second", "fraud_query_processed_rows_per_second",
                 "fraud_query_last_batch_duration_seconds", "fraud_query_last_committed_batch_id",
                 "fraud_query_batch_duration_seconds_count", "fraud_late_rows_total"):
        assert {dict(k)["query"] for k in m[name]} == queries, name
    route = next(p.group for p in run.plans if p.query.kind == "route")
    assert m["fraud_query_input_rows_total"][(("query", route),)] == n + len(BAD)
    assert m["fraud_query_batch_duration_seconds_count"][(("query", route),)] >= 1
    # records behind, per partition of the transactions topic (2 partitions), all read by now
    behind = {(dict(k)["topic"], dict(k)["partition"]): v for k, v in m["fraud_query_records_behind_latest"].items()
              if dict(k)["query"] == route}
    assert behind == {(run.sp.topic, "0"): 0, (run.sp.topic, "1"): 0}
    card = run.sp.load().model_path / "model_card.json"
    info = dict(next(iter(m["fraud_model_info"])))
    assert info["card_sha256"] == hashlib.sha256(card.read_bytes()).hexdigest()
    assert info["name"] == json.loads(card.read_text())["name"]


def test_a_prometheus_server_scrapes_it(live, tmp_path):
    exe = shutil.which("prometheus")
    if not exe:
        pytest.skip("no prometheus binary (Debian: apt-get install prometheus; make setup tries it)")
    run, _ = live
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: fraud\n    static_configs: [{{targets: ['127.0.0.1:{run.port}']}}]\n")
    log = open(tmp_path / "prometheus.log", "wb")
    server = subprocess.Popen([exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        query = urllib.parse.urlencode({"query": "fraud_alerts_total"})
        deadline, result = time.monotonic() + 60, []
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{query}", timeout=5))
                result = answer["data"]["result"]
            except OSError:
                result = []   # not listening yet
            if result:
                break
            time.sleep(1)
        assert result, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert result[0]["metric"]["job"] == "fraud"
        assert float(result[0]["value"][1]) == scrape(run.url)["fraud_alerts_total"][()]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

