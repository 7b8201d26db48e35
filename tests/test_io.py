"""Atomic writes: the new content replaces the file whole, a failing writer leaves the old file and no temp file.
Files and folders tsr writes follow the umask (tempfile alone makes them 0600 / 0700); replaced files keep
their mode."""
import os

import pytest

from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.io import atomic_write, atomic_write_text, umask


def test_atomic_write_replaces_the_file_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    assert atomic_write_text(path, "first") == path
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_failing_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")

    def half_then_fail(f):
        f.write(b"new, half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.fixture
def mask():
    def set_mask(value):
        os.umask(value)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def mode(path):
    return path.stat().st_mode & 0o777


def test_atomic_writes_follow_the_umask(tmp_path, mask):
    assert umask() == 0o022
    assert mode(atomic_write_text(tmp_path / "a.json", "{}")) == 0o644
    mask(0o007)
    assert umask() == 0o007 and mode(atomic_write_text(tmp_path / "b.json", "{}")) == 0o660
    (tmp_path / "a.json").chmod(0o640)
    assert mode(atomic_write_text(tmp_path / "a.json", "[]")) == 0o640          # a replaced file keeps its mode


def test_lmdb_folders_follow_the_umask(tmp_path, mask):
    write_textzoom_lmdb(tmp_path / "db", [(None, None, "a")])
    assert mode(tmp_path / "db") == 0o755 and mode(tmp_path / "db" / "data.mdb") == 0o644
