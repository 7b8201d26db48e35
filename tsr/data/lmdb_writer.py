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


def png_bytes(image) -> bytes:
    """A PIL image as the PNG bytes tsr stores in its LMDBs (TextZoom's are PNGs too)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)  # half the time of the default 6, 3% larger
    return buffer.getvalue()


def write_textzoom_lmdb(path, records: Iterable[tuple[Optional[bytes], Optional[bytes], str]],
                        overwrite: bool = False, map_size: int = 1 << 34, commit_every: int = 1000) -> int:
    """Write (hr_bytes, lr_bytes, label) records as records 1, 2, ...; returns how many were written.

    A None image leaves that key out (tests use this to make corrupt records). The LMDB is written into a temp
    folder next to `path` and renamed into place at the end, so a killed run never leaves a half-written LMDB
    that looks valid at `path` (what it left is removed by the next write of `path`). An existing `path` is an
    error unless `overwrite`. `map_size` is the largest the LMDB may grow to (address space only: the file holds
    just what is written).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists; pass overwrite=True (tsr synth: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in [*path.parent.glob(f".{path.name}.*.writing"), *path.parent.glob(f".{path.name}.*.old")]:
        shutil.rmtree(leftover, ignore_errors=True)   # what a killed earlier write of `path` left behind
    tmp = make_temp_dir(path.parent, prefix=f".{path.name}.", suffix=".writing")
    try:
        count = _write(tmp, records, map_size, commit_every)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


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
    """Move folder `new` to `path`; an existing `path` is first renamed aside, so `path` is never half-deleted."""
    if not path.exists():
        os.replace(new, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.replace(path, old / "data")
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)
