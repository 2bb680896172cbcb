"""The runner's own Kafka clients (kafka-python): admin, producer, consumer.

Every `kafka.*` option of the target reaches them, translated to kafka-python's
keyword names, so a secured cluster (SSL, SASL_SSL) works for replay, status and
topic creation the same way it does for Spark.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Mapping

from runner.errors import RunnerError

if TYPE_CHECKING:
    from runner.compile.project import TopicSpec

# Java client option -> kafka-python keyword. Declared as data; options not listed are
# Spark-only (e.g. max.poll.records) and stay with Spark. None: handled in client_config.
CLIENT_KEYS = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.kerberos.service.name": "sasl_kerberos_service_name",
    "sasl.jaas.config": None,          # username/password parsed out for PLAIN and SCRAM
    "ssl.truststore.location": None,   # a PEM truststore becomes ssl_cafile; JKS/PKCS12 is Java-only
    "ssl.truststore.type": None,
    "ssl.truststore.password": None,   # only a JKS/PKCS12 truststore has one
    "ssl.keystore.location": None,     # a PEM keystore (certificate chain + key) becomes ssl_certfile
    "ssl.keystore.type": None,
    "ssl.keystore.password": None,
    "ssl.key.password": "ssl_password",
    "ssl.cafile": "ssl_cafile",        # kafka-python names for PEM files, when the Java side uses JKS
    "ssl.certfile": "ssl_certfile",
    "ssl.keyfile": "ssl_keyfile",
    "ssl.crlfile": "ssl_crlfile",
    "ssl.endpoint.identification.algorithm": None,  # "" turns host name checking off
    "client.id": "client_id",
    "client.dns.lookup": "client_dns_lookup",
    "request.timeout.ms": "request_timeout_ms",
}
_JAAS = re.compile(r'\b(username|password)\s*=\s*"([^"]*)"')
_SASL_WITH_PASSWORD = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def client_config(options: Mapping[str, str]) -> dict:
    """kafka-python keyword arguments for the target's resolved kafka.* options.

    Raises RunnerError when the options need something kafka-python can not do (a JKS
    truststore with no PEM alternative, an unsupported SASL mechanism), naming the option."""
    where = "project.yml targets.<name>.kafka"
    cfg: dict = {}
    for key, value in options.items():
        name = CLIENT_KEYS.get(key)
        if name:
            cfg[name] = int(value) if name.endswith("_ms") else value
    protocol = str(options.get("security.protocol", "PLAINTEXT")).upper()
    if "ssl.endpoint.identification.algorithm" in options:
        cfg["ssl_check_hostname"] = bool(str(options["ssl.endpoint.identification.algorithm"]).strip())
    for store, kw in (("truststore", "ssl_cafile"), ("keystore", "ssl_certfile")):
        location = options.get(f"ssl.{store}.location")
        if not location:
            continue
        if str(options.get(f"ssl.{store}.type", "JKS")).upper() == "PEM":
            cfg.setdefault(kw, location)
        elif protocol.endswith("SSL") and kw not in cfg:
            raise RunnerError(f"ssl.{store}.location is a {options.get(f'ssl.{store}.type', 'JKS')} store, "
                              "which only Java clients (Spark) can read; the runner's own Kafka clients "
                              "(topics, replay, status) need PEM files", where=where,
                              hint=f"set ssl.{store}.type: PEM with a PEM file, or add "
                                   f"{kw.replace('_', '.')}: <PEM file> beside it")
    mechanism = str(options.get("sasl.mechanism", "GSSAPI" if protocol.startswith("SASL") else "")).upper()
    if protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = mechanism
        if mechanism in _SASL_WITH_PASSWORD:
            creds = dict(_JAAS.findall(options.get("sasl.jaas.config", "")))
            if "username" not in creds or "password" not in creds:
                raise RunnerError(f"sasl.mechanism {mechanism} needs sasl.jaas.config with username=\"...\" "
                                  "and password=\"...\"", where=where,
                                  hint='sasl.jaas.config: org.apache.kafka.common.security.plain.PlainLoginModule '
                                       'required username="app" password="${env:KAFKA_PASSWORD}";')
            cfg["sasl_plain_username"] = creds["username"]
            cfg["sasl_plain_password"] = creds["password"]
        elif mechanism != "GSSAPI":
            raise RunnerError(f"sasl.mechanism {mechanism} is not supported by the runner's Kafka clients",
                              where=where, hint="use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI")
    return cfg


def admin(options: Mapping[str, str], *, timeout_s: float = 30.0):
    """A KafkaAdminClient, retried for at most timeout_s, then a message naming the servers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError, KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        # bootstrap_timeout_ms bounds the constructor itself (else it blocks ~30 s per attempt)
        left_ms = max(500, int((deadline - time.monotonic()) * 1000))
        try:
            return KafkaAdminClient(**{"request_timeout_ms": 10000, **client_config(options),
                                       "bootstrap_timeout_ms": left_ms})
        except KafkaConfigurationError as e:
            raise RunnerError(f"Kafka client options in project.yml are not valid: {e}") from None
        except (KafkaError, OSError) as e:
            last = e
            time.sleep(0.5)
    raise RunnerError(f"Kafka at {options.get('bootstrap.servers')} did not answer within {timeout_s:g}s ({last})",
                      hint="start it with `runner kafka start`, or fix targets.<name>.kafka.bootstrap.servers in "
                           "project.yml (targets.<name>.kafka_wait_s sets how long apply waits)")


def _creatable(spec) -> dict:
    """kafka-python's create_topics entry for a partition count or a project.yml TopicSpec.

    Without a replication factor the broker's default.replication.factor applies (-1, KIP-464,
    brokers 2.4+): 1 on the single local broker, one replica per node on the local cluster, and
    whatever the operators chose on a real cluster."""
    if isinstance(spec, int):
        return {"num_partitions": spec, "replication_factor": -1}
    return {"num_partitions": spec.partitions,
            "replication_factor": spec.replication_factor if spec.replication_factor is not None else -1,
            "configs": dict(spec.configs)}


def ensure_topics(options: Mapping[str, str], topics: Mapping[str, "int | TopicSpec"], *,
                  timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet (a value is a partition count or a TopicSpec);
    wait until each has a leader; return the names created. Idempotent; existing topics are
    left as they are."""
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    client = admin(options, timeout_s=timeout_s)
    try:
        existing = set(client.list_topics())
        missing = {t: _creatable(spec) for t, spec in topics.items() if t not in existing}
        if not missing:
            return []
        result = client.create_topics(missing, raise_errors=False)
        for topic in result.get("topics", []):
            code = topic.get("error_code", 0)
            if code and code != TopicAlreadyExistsError.errno:  # another process created it meanwhile
                raise RunnerError(f"Kafka refused to create topic '{topic['name']}': "
                                  f"{topic.get('error_message') or code}", where="project.yml topics",
                                  hint=f"check topics.{topic['name']} (partitions, replication_factor at most "
                                       "the number of brokers, configs)")
        try:
            client.wait_for_topics(list(missing), timeout_ms=int(timeout_s * 1000))
        except KafkaError as e:
            raise RunnerError(f"Kafka created {', '.join(missing)} but gave no leader within {timeout_s:g}s ({e})",
                              hint="check that every broker of the cluster runs (`runner kafka status`)") from None
        return list(missing)
    finally:
        client.close()


def list_topics(options: Mapping[str, str], *, timeout_s: float = 10.0) -> list[str]:
    """The topics' names (internal ones left out). Retried within timeout_s: right after a broker
    of a cluster dies, the metadata still names it and the client may ask it first."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    client = admin(options, timeout_s=timeout_s)
    try:
        while True:
            try:
                return sorted(t for t in client.list_topics() if not t.startswith("__"))
            except KafkaError as e:
                if time.monotonic() >= deadline:
                    raise RunnerError(f"Kafka at {options.get('bootstrap.servers')} did not list its topics "
                                      f"within {timeout_s:g}s ({e})") from None
                time.sleep(0.5)
    finally:
        client.close()


def end_offsets(options: Mapping[str, str], topics: set[str], *, timeout_s: float = 30.0) -> dict[str, dict[int, int]]:
    """{topic: {partition: the offset the next record will get}} for each topic."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**{"request_timeout_ms": int(timeout_s * 1000), **client_config(options)})
    try:
        out = {}
        for topic in sorted(topics):
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                raise RunnerError(f"topic '{topic}' has no partitions (or does not exist)",
                                  hint="apply creates the project's topics first; check project.yml topics")
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(parts)])
            out[topic] = {tp.partition: off for tp, off in ends.items()}
        return out
    finally:
        consumer.close()
