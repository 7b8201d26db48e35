"""Write TextZoom-layout LMDBs: `num-samples`, `label-%09d`, `image_hr-%09d`, `image_lr-%09d`, 1-indexed."""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Optional

import lmdb

from tsr.errors import DataError
from tsr.io import make_temp_dir

# What an LMDB folder written here holds (lock.mdb only when another program opened it with a lock): the only
# thing an overwrite may delete. Anything else at the path is the user's (a folder of images, a labels file).
LMDB_FILES = frozenset({"data.mdb", "lock.mdb"})


def png_bytes(image) -> bytes:
    """A PIL image as the PNG bytes tsr stores in its LMDBs (TextZoom's are PNGs too)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)  # half the time of the default 6, 3% larger
    return buffer.getvalue()


def check_target(path, overwrite: bool, option: str = "overwrite=True") -> None:
    """DataError unless an LMDB may be written at `path`: nothing is there, or an LMDB folder (or an empty folder)
    and `overwrite`. `option` is how the caller's user asks for that (tsr synth / pack: '--overwrite')."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    other = _not_an_lmdb(path)
    if other:
        raise DataError(f"{path} is {other}, not an LMDB folder (data.mdb, lock.mdb); tsr only replaces an LMDB it "
                        f"could have written: choose another path")
    if not overwrite:
        raise DataError(f"{path} already exists; pass {option} to replace it")


def _not_an_lmdb(path: Path) -> Optional[str]:
    """What is at `path` when it is not a folder holding nothing but LMDB files; None when it is."""
    if path.is_symlink():   # replacing the link would lose it; writing through it is not what overwrite says
        return f"a symbolic link (to {os.readlink(path)})"
    if not path.is_dir():
        return "a file"
    others = sorted(p.name for p in path.iterdir() if p.name not in LMDB_FILES or p.is_symlink() or not p.is_file())
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"a folder holding {len(others)} other entr{'y' if len(others) == 1 else 'ies'} ({shown})"
    return None


def write_textzoom_lmdb(path, records: Iterable[tuple[Optional[bytes], Optional[bytes], str]],
                        overwrite: bool = False, map_size: int = 1 << 34, commit_every: int = 1000,
                        option: str = "overwrite=True") -> int:
    """Write (hr_bytes, lr_bytes, label) records as records 1, 2, ...; returns how many were written.

    A None image leaves that key out (tests use this to make corrupt records). The LMDB is written into a temp
    folder next to `path` and renamed into place at the end, so a killed run never leaves a half-written LMDB
    that looks valid at `path` (what it left is removed by the next write of `path`). An existing `path` is an
    error unless `overwrite`, and even then unless it is an LMDB folder (check_target). `map_size` is the largest
    the LMDB may grow to (address space only: the file holds just what is written).
    """
    with LMDBSet(overwrite, option) as lmdbs:
        return lmdbs.write(path, records, map_size, commit_every)


class LMDBSet:
    """LMDBs written all or nothing (tsr pack's train and test splits): each write() goes to a temp folder next to
    its path; leaving the `with` block normally moves them all into place, leaving it by an exception (a damaged
    image in the last split, Ctrl-C) removes them and the folders made for them, so that no part of the set is
    left looking complete."""

    def __init__(self, overwrite: bool = False, option: str = "overwrite=True"):
        self.overwrite, self.option = overwrite, option
        self.staged: dict[Path, Path] = {}   # path -> its temp folder
        self.made: list[Path] = []           # folders made on the way to a path, outermost first

    def write(self, path, records, map_size: int = 1 << 34, commit_every: int = 1000) -> int:
        path = Path(path)
        check_target(path, self.overwrite, self.option)
        missing = [p for p in reversed(path.parents) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.made += missing
        for leftover in [*path.parent.glob(f".{path.name}.*.writing"), *path.parent.glob(f".{path.name}.*.old")]:
            shutil.rmtree(leftover, ignore_errors=True)   # what a killed earlier write of `path` left behind
        self.staged[path] = make_temp_dir(path.parent, prefix=f".{path.name}.", suffix=".writing")
        return _write(self.staged[path], records, map_size, commit_every)

    def __enter__(self) -> "LMDBSet":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        done = False
        try:
            if kind is None:
                for path in self.staged:   # checked again: something may have appeared there while writing
                    check_target(path, self.overwrite, self.option)
                for path, folder in self.staged.items():
                    _replace_dir(folder, path)
                done = True
        finally:
            for folder in self.staged.values():
                shutil.rmtree(folder, ignore_errors=True)   # gone already once moved into place
            if not done:
                for folder in reversed(self.made):
                    try:
                        folder.rmdir()   # only when empty: never what someone else put there meanwhile
                    except OSError:
                        pass


def _write(folder: Path, records, map_size: int, commit_every: int) -> int:
    # lock=False: nobody else can see the temp folder, and no lock.mdb is left behind
    env = lmdb.open(str(folder), map_size=map_size, subdir=True, lock=False)
    count, txn = 0, None
    try:
        txn = env.begin(write=True)
        for count, (hr, lr, label) in enumerate(records, start=1):
            if not isinstance(label, str):
                raise ValueError(f"record {count}: label must be str, got {type(label).__name__}")
            txn.put(b"label-%09d" % count, label.encode("utf-8"))
            if hr is not None:
                txn.put(b"image_hr-%09d" % count, hr)
            if lr is not None:
                txn.put(b"image_lr-%09d" % count, lr)
            if count % commit_every == 0:  # bounded transactions: memory stays flat on large datasets
                txn.commit()
                txn = env.begin(write=True)
        txn.put(b"num-samples", str(count).encode())
        txn.commit()
        env.sync(True)
    except BaseException:
        if txn is not None:
            txn.abort()  # a no-op once committed
        raise
    finally:
        env.close()
    return count


def _replace_dir(new: Path, path: Path) -> None:
    """Move folder `new` to `path`; an existing `path` (an LMDB folder: check_target) is first renamed aside, so
    `path` is never half-deleted."""
    if not path.exists():
        os.replace(new, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.replace(path, old / "data")
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)
