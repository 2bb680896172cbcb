"""docker-compose.yml is checked against the Compose Specification (no Docker engine runs here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _check(path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_validates(repo):
    result = _check(repo / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelt_key_is_caught(repo, tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((repo / "docker-compose.yml").read_text().replace("depends_on:", "depend_on:"))
    assert _check(broken).returncode != 0
