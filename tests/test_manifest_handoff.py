"""The manifest is the hand-off between compile and run time (issue 13.1).

`runner compile` writes target/manifest.json with its inputs' hash; run-time verbs load it and
compile again (saying so in one line on stderr) only when project.yml, sql/, the --var options or
the model card changed; the read-only verbs never write under target/; the run-time packages do
not import the Jinja layer.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.compile.manifest import STALE, input_hash
from runner.compile.project import load_project

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The shipped project.yml and sql/ in a fresh folder, its broker on a port nobody listens on."""
    from runner.tools.kafka_local import free_port

    shutil.copytree(REPO / "sql", tmp_path / "sql")
    text = (REPO / "project.yml").read_text()
    assert "bootstrap.servers: 127.0.0.1:9092" in text
    (tmp_path / "project.yml").write_text(text.replace("bootstrap.servers: 127.0.0.1:9092",
                                                       f"bootstrap.servers: 127.0.0.1:{free_port()}", 1))
    return tmp_path


def runner(root: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("runner")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]
    return subprocess.run([*cmd, "--project", str(root), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def target_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under target/ with its mtime (ns) and size: what 'untouched' compares."""
    target = root / "target"
    return {str(p.relative_to(target)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(target.rglob("*"))} if target.exists() else {}


def manifest_hash(root: Path) -> str:
    return json.loads((root / "target" / "manifest.json").read_text())["inputs"]["hash"]


def add_schema_field(root: Path) -> None:
    path = root / "project.yml"
    text = path.read_text()
    assert "        Class: INT\n" in text
    path.write_text(text.replace("        Class: INT\n", "        Class: INT\n        merchant: STRING\n", 1))


def test_manifest_records_what_run_time_needs(project_copy):
    out = runner(project_copy, "compile")
    assert out.returncode == 0, out.stderr
    raw = json.loads((project_copy / "target" / "manifest.json").read_text())
    project = load_project(project_copy)
    assert raw["inputs"]["hash"] == input_hash(project)
    assert raw["vars"]["threshold"] == {"type": "double", "value": "0.9", "literal": "0.9"}
    assert raw["sources"]["transactions"]["schema"] == project.sources["transactions"].schema
    assert raw["features"]["names"][-1] == "Amount" and "Time" not in raw["features"]["names"]
    assert raw["routes"]["sql"] and all(m["sql"] and m["fingerprint"] for m in raw["models"])


def test_stale_manifest_is_recompiled_with_one_line_saying_so(project_copy):
    assert runner(project_copy, "compile").returncode == 0
    compiled_from = manifest_hash(project_copy)

    fresh = runner(project_copy, "plan", "--no-spark")   # current: loaded as it is, nothing said
    assert fresh.returncode == 0, fresh.stderr
    assert "recompiling" not in fresh.stderr and manifest_hash(project_copy) == compiled_from

    add_schema_field(project_copy)
    stale = runner(project_copy, "plan", "--no-spark")
    assert stale.returncode == 0, stale.stderr
    assert stale.stderr.splitlines().count(STALE) == 1, stale.stderr
    # plan may write: the manifest now matches the changed project and carries the new field
    assert manifest_hash(project_copy) == input_hash(load_project(project_copy)) != compiled_from
    stg = next(m for m in json.loads((project_copy / "target" / "manifest.json").read_text())["models"]
               if m["name"] == "stg_parsed")
    assert "merchant STRING" in stg["sql"]

    again = runner(project_copy, "plan", "--no-spark")
    assert "recompiling" not in again.stderr

    with_var = runner(project_copy, "plan", "--no-spark", "--var", "threshold=0.5")   # --var is an input too
    assert with_var.stderr.splitlines().count(STALE) == 1, with_var.stderr


@pytest.mark.parametrize("verb", ["status", "audit"])
def test_read_only_verbs_leave_target_untouched(project_copy, broker, verb):
    # On the tests' broker: status asks Kafka how far behind the query is, and with nobody listening
    # each run would wait out kafka-python's bootstrap timeout (30 s) before answering.
    yml = project_copy / "project.yml"
    yml.write_text(re.sub(r"bootstrap\.servers: 127\.0\.0\.1:\d+", f"bootstrap.servers: {broker.bootstrap}",
                          yml.read_text(), count=1))
    # status reads the manifest only when there is a query: give it one checkpoint folder
    (project_copy / "checkpoints" / "fraud_alerts__kafka").mkdir(parents=True)
    (project_copy / "checkpoints" / "fraud_alerts__kafka" / "runner.json").write_text('{"members": {}}')

    nothing = runner(project_copy, verb)      # no target/ yet: compiled in memory, none created
    assert nothing.returncode == 0, nothing.stderr
    assert not (project_copy / "target").exists()

    assert runner(project_copy, "compile").returncode == 0
    add_schema_field(project_copy)           # stale now
    before = target_state(project_copy)
    assert "manifest.json" in before
    out = runner(project_copy, verb)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines().count(STALE) == 1, out.stderr
    assert target_state(project_copy) == before


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("package", ["runner/stream", "runner/tools"])
def test_run_time_packages_do_not_import_the_jinja_layer(package):
    offenders = {str(f.relative_to(REPO)): sorted(n for n in _imports(f) if n.startswith("runner.compile.render"))
                 for f in sorted((REPO / package).rglob("*.py"))}
    assert not {f: n for f, n in offenders.items() if n}, "import runner.compile.manifest (the hand-off) instead"


def test_udfs_import_nothing_from_the_runner():
    """udfs is the leaf: the runner imports it, never the other way (README "Project layout")."""
    offenders = {str(f.relative_to(REPO)): sorted(n for n in _imports(f) if n == "runner" or n.startswith("runner."))
                 for f in sorted((REPO / "udfs").rglob("*.py"))}
    assert not {f: n for f, n in offenders.items() if n}
