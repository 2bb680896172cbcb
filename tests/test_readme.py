"""Every command the README shows (in its ```bash blocks, run from the repo: `make ...` and
`.venv/bin/...`) is run by a test or by `make demo`; the exercises' commands are run here."""
from __future__ import annotations

import os
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# command (as the README writes it, up to the options that vary) -> (file that runs it, what it contains)
COVERED = {
    "make demo": ("tests/test_demo.py", '"demo"'),                    # `runner demo`; `make demo` is `setup` + that
    "make test": ("Makefile", "test: setup"),
    ".venv/bin/runner kafka start": ("tests/stream/test_broker.py", '"kafka", "start"'),
    ".venv/bin/runner kafka status": ("tests/stream/test_broker.py", '"kafka", "status"'),
    ".venv/bin/runner kafka stop": ("tests/stream/test_broker.py", '"kafka", "stop"'),
    ".venv/bin/runner train --synthetic": ("tests/model/test_model.py", '"train", "--synthetic"'),
    ".venv/bin/runner train --data": ("tests/test_demo.py", "creditcard.csv"),  # the demo runs `train --data` on it
    ".venv/bin/runner replay --data": ("tests/test_readme.py", "test_replay_csv_command"),
    ".venv/bin/runner compile": ("tests/sql/test_compile.py", '"compile"'),
    ".venv/bin/runner docs": ("tests/test_docs.py", '"docs", "--no-spark"'),   # the Spark default: docs.build(spark=)
    ".venv/bin/runner plan": ("tests/stream/test_readme_exercises.py", "test_exercise_plans"),
    ".venv/bin/runner apply": ("tests/stream/test_pipeline.py", '"apply"'),
    ".venv/bin/runner dashboard": ("tests/test_report.py", '"dashboard"'),
    ".venv/bin/runner report": ("tests/test_report.py", '"report"'),
    ".venv/bin/python -c": ("tests/test_readme.py", "test_kpi_one_liner"),
}


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(("make ", ".venv/bin/")):
                out.append(re.split(r"\s+#\s", line)[0].strip())
    return out


def covering(cmd: str) -> str | None:
    keys = [k for k in COVERED if cmd == k or cmd.startswith(k + " ")]
    return max(keys, key=len) if keys else None


def test_every_readme_command_is_run_by_a_test():
    cmds = readme_commands()
    assert len(cmds) >= 15 and "make demo" in cmds and "make test" in cmds
    missing = [c for c in cmds if covering(c) is None]
    assert not missing, f"README commands no test runs: {missing}"
    for key in {covering(c) for c in cmds}:
        path, needle = COVERED[key]
        assert needle in (REPO / path).read_text(), f"{path} no longer runs `{key}`"


def readme_command(prefix: str) -> list[str]:
    found = [c for c in readme_commands() if c.startswith(prefix)]
    assert found, f"README has no command starting with {prefix!r}"
    return found


def run_readme(cmd: str, root: Path, timeout: float = 300, columns: int = 200, **kw) -> subprocess.CompletedProcess:
    """A README command, run with this venv's executables against the project in `root`."""
    args = shlex.split(cmd)
    exe = Path(sys.executable).with_name(Path(args[0]).name)
    return subprocess.run([str(exe), "--project", str(root), *args[1:]], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": str(columns)}, **kw)


def test_kpi_one_liner(broker):
    """Exercise 3: the README's kafka-python one-liner prints what is on fraud_kpis."""
    from kafka import KafkaProducer

    from runner.stream.kafka_clients import ensure_topics

    (cmd,) = readme_command(".venv/bin/python -c")
    assert "fraud_kpis" in cmd and "127.0.0.1:9092" in cmd
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {"fraud_kpis": 1})
    row = {"window_start": "2026-01-05T09:00:00.000Z", "n_txn": 101, "marker": time.time()}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("fraud_kpis", key=b"2026-01-05T09:00:00.000Z", value=json.dumps(row).encode())
    producer.flush(30)
    producer.close()
    args = shlex.split(cmd.replace("127.0.0.1:9092", broker.bootstrap))
    r = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.dumps(row) in r.stdout.splitlines()


def test_replay_csv_command(broker, tmp_path):
    """The Kaggle section's replay command, on a small creditcard.csv-layout file."""
    from runner.tools.synth import generate

    (cmd,) = readme_command(".venv/bin/runner replay --data")
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    generate(300, seed=5).to_csv(root / "data" / "creditcard.csv", index=False)
    shutil.copy(REPO / "project.yml", root / "project.yml")
    shutil.copytree(REPO / "sql", root / "sql")
    cmd = cmd.replace("--speedup 120", "--speedup 100000") + f" --bootstrap {broker.bootstrap} --topic csv_{int(time.time())}"
    r = run_readme(cmd, root, timeout=120, cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent 300 to" in r.stdout and "errors 0" in r.stdout
