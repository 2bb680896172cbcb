"""runner/files.py: a file or folder is replaced whole, or left as it was."""
from __future__ import annotations

import pytest

from runner.files import replace_folder, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temp(tmp_path):
    f = tmp_path / "sub" / "state.json"
    write_atomic(f, '{"a": 1}')
    write_atomic(f, b'{"a": 2}', mode=0o644)
    assert f.read_text() == '{"a": 2}' and (f.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in f.parent.iterdir()] == ["state.json"]


def test_write_atomic_that_fails_keeps_the_old_file(tmp_path):
    f = tmp_path / "state.json"
    write_atomic(f, "old")
    with pytest.raises(TypeError):
        write_atomic(f, 42)   # not text nor bytes: fails while writing the temp file
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_replace_folder_swaps_in_the_new_folder(tmp_path):
    dest = tmp_path / "site"
    dest.mkdir()
    (dest / "stale.html").write_text("old")
    with replace_folder(dest) as tmp:
        assert tmp.parent == tmp_path and not (tmp / "stale.html").exists()
        (tmp / "index.html").write_text("new")
        assert (dest / "stale.html").exists()      # nothing visible until the block ends
    assert sorted(p.name for p in dest.iterdir()) == ["index.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


def test_replace_folder_that_fails_keeps_the_old_folder(tmp_path):
    dest = tmp_path / "site"
    dest.mkdir()
    (dest / "index.html").write_text("old")
    with pytest.raises(RuntimeError), replace_folder(dest) as tmp:
        (tmp / "index.html").write_text("half")
        raise RuntimeError("build failed")
    assert (dest / "index.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["site"]
