"""Write TextZoom-layout LMDBs: `num-samples`, `label-%09d`, `image_hr-%09d`, `image_lr-%09d`, 1-indexed."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional

import lmdb

from tsr.errors import DataError


def write_textzoom_lmdb(path, records: Iterable[tuple[Optional[bytes], Optional[bytes], str]],
                        overwrite: bool = False, map_size: int = 1 << 34, commit_every: int = 1000) -> int:
    """Write (hr_bytes, lr_bytes, label) records; a None image leaves that key out (tests use this to make
    corrupt records). Written into a temp folder then renamed, so a killed run never leaves a half-written LMDB
    at `path`. Returns the number of records."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists; pass overwrite=True (tsr synth: --overwrite) to replace it")
    tmp = path.with_name(f".{path.name}.writing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = lmdb.open(str(tmp), map_size=map_size, subdir=True, lock=False)
    count = 0
    try:
        txn = env.begin(write=True)
        for count, (hr, lr, label) in enumerate(records, start=1):
            txn.put(b"label-%09d" % count, label.encode("utf-8"))
            if hr is not None:
                txn.put(b"image_hr-%09d" % count, hr)
            if lr is not None:
                txn.put(b"image_lr-%09d" % count, lr)
            if count % commit_every == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.put(b"num-samples", str(count).encode())
        txn.commit()
        env.sync()
    except BaseException:
        env.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    env.close()
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return count
