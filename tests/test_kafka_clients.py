"""Every kafka.* option of a target reaches the runner's kafka-python clients (SSL, SASL_SSL), with
secrets resolved from the environment; what kafka-python can not do is refused with a hint."""
from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from runner.errors import RunnerError
from runner.stream.kafka_clients import client_config

SCRAM = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
         'username="fraud" password="p@ss word;1";')
# What every one of the runner's clients (admin, producer, consumer) accepts.
ACCEPTED = set(KafkaAdminClient.DEFAULT_CONFIG) & set(KafkaProducer.DEFAULT_CONFIG) & set(KafkaConsumer.DEFAULT_CONFIG)


def test_sasl_ssl_scram_with_pem_truststore():
    cfg = client_config({
        "bootstrap.servers": "b1:9093,b2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": SCRAM,
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/etc/kafka/ca.pem",
        "ssl.endpoint.identification.algorithm": "https", "request.timeout.ms": "15000",
        "max.poll.records": "500",  # Spark-only: not for the runner's clients
    })
    assert cfg == {"bootstrap_servers": "b1:9093,b2:9093", "security_protocol": "SASL_SSL",
                   "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "fraud",
                   "sasl_plain_password": "p@ss word;1", "ssl_cafile": "/etc/kafka/ca.pem",
                   "ssl_check_hostname": True, "request_timeout_ms": 15000}
    assert set(cfg) <= ACCEPTED


def test_sasl_plain_over_plaintext_protocol_and_default_mechanism():
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";'
    cfg = client_config({"bootstrap.servers": "b:9092", "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": "PLAIN", "sasl.jaas.config": jaas})
    assert (cfg["sasl_mechanism"], cfg["sasl_plain_username"], cfg["sasl_plain_password"]) == ("PLAIN", "u", "p")
    gssapi = client_config({"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL",
                            "sasl.kerberos.service.name": "kafka", "ssl.cafile": "/ca.pem"})
    assert gssapi["sasl_mechanism"] == "GSSAPI" and gssapi["sasl_kerberos_service_name"] == "kafka"
    assert set(gssapi) <= ACCEPTED


def test_ssl_mutual_tls_with_pem_keystore():
    cfg = client_config({
        "bootstrap.servers": "b:9093", "security.protocol": "SSL",
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/ca.pem",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": "/client.pem", "ssl.key.password": "kp",
        "ssl.endpoint.identification.algorithm": "", "client.id": "fraud-runner",
    })
    assert cfg == {"bootstrap_servers": "b:9093", "security_protocol": "SSL", "ssl_cafile": "/ca.pem",
                   "ssl_certfile": "/client.pem", "ssl_password": "kp", "ssl_check_hostname": False,
                   "client_id": "fraud-runner"}
    assert set(cfg) <= ACCEPTED


def test_jks_stores_need_a_pem_alternative_for_the_python_clients():
    jks = {"bootstrap.servers": "b:9093", "security.protocol": "SSL",
           "ssl.truststore.location": "/ts.jks", "ssl.truststore.password": "jks-secret"}
    with pytest.raises(RunnerError) as e:
        client_config(jks)
    assert "ssl.truststore.location" in str(e.value) and "PEM" in str(e.value.hint)
    assert "jks-secret" not in str(e.value)
    # Spark keeps the JKS store; the Python clients read the PEM file given beside it.
    assert client_config({**jks, "ssl.cafile": "/ca.pem"})["ssl_cafile"] == "/ca.pem"
    # Under PLAINTEXT the stores are not read at all.
    assert "ssl_cafile" not in client_config({**jks, "security.protocol": "PLAINTEXT"})


def test_sasl_options_kafka_python_can_not_use_are_refused():
    with pytest.raises(RunnerError, match="username"):
        client_config({"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                       "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;"})
    with pytest.raises(RunnerError, match="OAUTHBEARER"):
        client_config({"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL",
                       "sasl.mechanism": "OAUTHBEARER"})


def test_env_references_resolve_only_when_options_are_used(tmp_path, monkeypatch, repo):
    import yaml

    from runner.compile.project import load_project
    from runner.stream.sources import spark_kafka_options

    raw = yaml.safe_load((repo / "project.yml").read_text())
    raw["targets"]["cluster"]["kafka"].update({
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": SCRAM.replace("p@ss word;1", "${env:KAFKA_PASSWORD}"),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": "/ca.pem"})
    (tmp_path / "project.yml").write_text(yaml.safe_dump(raw))
    monkeypatch.delenv("KAFKA_PASSWORD", raising=False)
    project = load_project(tmp_path, target="cluster")
    assert "${env:KAFKA_PASSWORD}" in project.target.kafka["sasl.jaas.config"]
    with pytest.raises(RunnerError, match="KAFKA_PASSWORD"):
        spark_kafka_options(project)

    monkeypatch.setenv("KAFKA_PASSWORD", "from-env")
    spark = spark_kafka_options(project)
    assert spark["kafka.security.protocol"] == "SASL_SSL"
    assert spark["kafka.sasl.jaas.config"].endswith('password="from-env";')
    assert client_config(project.target.kafka_options())["sasl_plain_password"] == "from-env"
