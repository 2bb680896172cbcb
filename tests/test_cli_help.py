"""`runner --help` and every verb's help explain options with their defaults; wrong use gives
one-line errors (no usage dump, no traceback)."""
from __future__ import annotations

import os
import subprocess

import click
import pytest
from click.testing import CliRunner

from runner.cli import cli


def commands(cmd: click.Command = cli, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from commands(sub, path + (name,))


ALL = list(commands())


def test_every_verb_is_listed():
    names = {p[0] for p, _ in ALL if p}
    assert {"kafka", "compile", "lineage", "train", "plan", "apply", "reset", "status", "audit", "replay",
            "demo", "dashboard", "report"} <= names


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) or "runner" for p, _ in ALL])
def test_help_explains_every_option_with_its_default(path, cmd):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="runner")
    assert result.exit_code == 0, result.output
    assert cmd.help and cmd.help.split()[0] in result.output   # the verb says what it does
    ctx = click.Context(cmd, info_name="runner")
    for p in cmd.params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        record = p.get_help_record(ctx)
        assert record and record[1].strip(), f"{' '.join(path)} {p.opts[0]} has no help text"
        if p.is_flag or p.multiple or p.count:
            continue  # off unless given / repeatable: nothing to default
        assert "default" in record[1].lower(), f"{' '.join(path)} {p.opts[0]} does not say its default: {record[1]!r}"
        assert p.opts[0] in result.output


@pytest.mark.parametrize("args,expected", [
    (["apply", "--no-such-option"], "error: runner apply: No such option '--no-such-option'"),
    (["apply", "--timeout", "-3"], "error: runner apply: Invalid value for '--timeout'"),
    (["apply", "--available-now", "--warm-up", "5"], "error: runner apply: --warm-up is for a running pipeline"),
    (["demo", "--rows", "ten"], "error: runner demo: Invalid value for '--rows'"),
    (["frobnicate"], "error: runner: No such command 'frobnicate'"),
    (["train", "--model", "svm"], "error: runner train: Invalid value for '--model'"),
    (["kafka", "start", "--port", "70000"], "error: runner kafka start: Invalid value for '--port'"),
    (["--target", "nowhere", "compile"], "unknown target 'nowhere'"),
    (["compile", "--var", "threshold=high"], "var 'threshold' is double"),
    (["compile", "--var", "threshold"], "expected name=value"),
])
def test_wrong_use_is_a_one_line_error(runner_cmd, repo, args, expected):
    r = subprocess.run([*runner_cmd, "--project", str(repo), *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "COLUMNS": "60"})
    assert r.returncode in (1, 2), (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Usage:" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and expected in lines[0], r.stderr
    assert len(lines) <= 2 and all(line.startswith("  hint:") for line in lines[1:]), r.stderr  # message (+ hint)
