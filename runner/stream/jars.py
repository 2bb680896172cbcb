"""Where `make setup` put the JVM parts (jvm/lib/{broker,connector}), and checks on them."""
from __future__ import annotations

import os
import re
from pathlib import Path

from runner.errors import RunnerError

JVM_LIB = Path(os.environ.get("RUNNER_JVM_LIB", Path(__file__).resolve().parents[2] / "jvm" / "lib"))
_CONNECTOR = re.compile(r"spark-sql-kafka-0-10_2\.13-(?P<version>[\w.\-]+)\.jar$")


def jars(kind: str) -> list[Path]:
    """All jars of one class path ('broker' or 'connector'); a clear error when missing."""
    folder = JVM_LIB / kind
    found = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    if not found:
        raise RunnerError(f"the {kind} jars are not resolved (nothing in {folder})", hint="run `make setup`")
    return found


def connector_version(connector_jars: list[Path]) -> str:
    for jar in connector_jars:
        m = _CONNECTOR.match(jar.name)
        if m:
            return m.group("version")
    raise RunnerError(f"no spark-sql-kafka-0-10_2.13 jar in {JVM_LIB / 'connector'}", hint="run `make setup`")
