"""The runner's own Kafka clients (kafka-python): admin, producer, consumer.

Every `kafka.*` option of the target reaches them, translated to kafka-python's
keyword names, so a secured cluster (SSL, SASL_SSL) works for replay, status and
topic creation the same way it does for Spark.
"""
from __future__ import annotations

import re
import time
from typing import Mapping

from runner.errors import RunnerError

# Java client option -> kafka-python keyword. Declared as data; unknown keys are refused.
CLIENT_KEYS = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "ssl.truststore.location": None,   # JKS is Java-only; use ssl.cafile for the Python clients
    "ssl.truststore.password": None,
    "ssl.truststore.type": None,
    "ssl.keystore.location": None,
    "ssl.keystore.password": None,
    "ssl.keystore.type": None,
    "ssl.key.password": "ssl_password",
    "ssl.cafile": "ssl_cafile",
    "ssl.certfile": "ssl_certfile",
    "ssl.keyfile": "ssl_keyfile",
    "ssl.endpoint.identification.algorithm": None,
    "sasl.jaas.config": None,          # parsed below into sasl_plain_username/password
    "client.id": "client_id",
    "request.timeout.ms": "request_timeout_ms",
}
_JAAS = re.compile(r'(username|password)\s*=\s*"([^"]*)"')


def client_config(options: Mapping[str, str]) -> dict:
    """kafka-python keyword arguments for the target's resolved kafka.* options."""
    cfg: dict = {}
    for key, value in options.items():
        if key not in CLIENT_KEYS:
            continue  # Spark-only options (e.g. kafka.max.poll.records) stay with Spark
        name = CLIENT_KEYS[key]
        if name:
            cfg[name] = int(value) if name.endswith("_ms") else value
    jaas = options.get("sasl.jaas.config")
    if jaas:
        creds = dict(_JAAS.findall(jaas))
        cfg["sasl_plain_username"] = creds.get("username")
        cfg["sasl_plain_password"] = creds.get("password")
    return cfg


def admin(options: Mapping[str, str], *, timeout_s: float = 30.0):
    """A KafkaAdminClient, retried for at most timeout_s, then a message naming the servers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError, KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return KafkaAdminClient(**{"request_timeout_ms": 10000, **client_config(options)})
        except KafkaConfigurationError as e:
            raise RunnerError(f"Kafka client options in project.yml are not valid: {e}") from None
        except (KafkaError, OSError) as e:
            last = e
            time.sleep(0.5)
    raise RunnerError(f"Kafka at {options.get('bootstrap.servers')} did not answer within {timeout_s:.0f}s ({last})",
                      hint="start it with `runner kafka start`, or fix targets.<name>.kafka.bootstrap.servers in project.yml")


def ensure_topics(options: Mapping[str, str], topics: Mapping[str, int], *, timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Idempotent."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    client = admin(options, timeout_s=timeout_s)
    try:
        existing = set(client.list_topics())
        missing = [NewTopic(name=t, num_partitions=n, replication_factor=1)
                   for t, n in topics.items() if t not in existing]
        if missing:
            try:
                client.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        return [t.name for t in missing]
    finally:
        client.close()


def list_topics(options: Mapping[str, str], *, timeout_s: float = 10.0) -> list[str]:
    client = admin(options, timeout_s=timeout_s)
    try:
        return sorted(t for t in client.list_topics() if not t.startswith("__"))
    finally:
        client.close()
