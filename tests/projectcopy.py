"""The shipped project.yml and sql/ in a fresh folder, to edit and compile (see the project_copy fixture)."""
from __future__ import annotations

import shutil
from pathlib import Path


def copy_project(repo: Path, dest: Path) -> Path:
    shutil.copy(repo / "project.yml", dest / "project.yml")
    shutil.copytree(repo / "sql", dest / "sql")
    return dest


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the first `old` in root/rel with `new`; `old` must be there."""
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))
