"""Every command the README shows (in its ```bash blocks, run from the repo: `make ...` and
`.venv/bin/...`) is run here: each `runner` command's `--help` through the real CLI, with every
option the README passes found in that help; `runner compile` itself; `make -n` of each make
target; the kafka-python one-liner and the Kaggle replay command for real. The exercises'
commands that need a trained model are run by tests/stream/test_readme_exercises.py."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(("make ", ".venv/bin/")):
                out.append(re.split(r"\s+#\s", line)[0].strip())
    return out


def runner_words(cmd: str) -> tuple[list[str], list[str]]:
    """(the verb and sub-verb, the options) of a `.venv/bin/runner ...` command."""
    args = shlex.split(cmd)[1:]
    words = []
    while args and not args[0].startswith("-"):
        words.append(args.pop(0))
    return words, [a.split("=")[0] for a in args if a.startswith("--")]


def test_readme_shows_the_commands_users_need():
    cmds = readme_commands()
    assert len(cmds) >= 15 and "make demo" in cmds and "make test" in cmds
    unknown = [c for c in cmds if not c.startswith(("make ", ".venv/bin/runner ", ".venv/bin/python -c "))]
    assert not unknown, f"README commands this test does not know how to run: {unknown}"


@pytest.mark.parametrize("cmd", sorted({c for c in readme_commands() if c.startswith(".venv/bin/runner ")}))
def test_runner_command_help(cmd):
    """The README's verb exists and takes every option the README gives it."""
    from runner.cli import cli

    words, options = runner_words(cmd)
    result = CliRunner().invoke(cli, [*words, "--help"], prog_name="runner", terminal_width=200)
    assert result.exit_code == 0, f"{cmd}: {result.output}{result.exception!r}"
    assert f"Usage: runner {' '.join(words)} " in result.output, result.output
    for option in options:
        assert option in result.output, f"`{cmd}`: {option} is not an option of `runner {' '.join(words)}`"


@pytest.mark.parametrize("cmd", sorted({c for c in readme_commands() if c.startswith("make ")}))
def test_make_target_exists(cmd):
    """`make -n` prints the recipe without running it; an unknown target fails."""
    r = subprocess.run(["make", "-n", *shlex.split(cmd)[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmd}: {r.stderr}"


def test_python_one_liner_parses():
    for cmd in readme_command(".venv/bin/python -c"):
        compile(shlex.split(cmd)[2], "<README>", "exec")   # run for real by test_kpi_one_liner


def test_compile_command(tmp_path):
    """`runner compile`, as written, on a copy of the project: cheap enough to run itself."""
    (cmd,) = [c for c in readme_commands() if c == ".venv/bin/runner compile"]
    shutil.copy(REPO / "project.yml", tmp_path / "project.yml")
    shutil.copytree(REPO / "sql", tmp_path / "sql")
    r = run_readme(cmd, tmp_path, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "target" / "manifest.json").is_file()


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
    cmd = (cmd.replace("--speedup 120", "--speedup 100000")
           + f" --bootstrap {broker.bootstrap} --topic csv_{int(time.time())}")
    r = run_readme(cmd, root, timeout=120, cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent 300 to" in r.stdout and "errors 0" in r.stdout
