"""Damaged LMDBs: a truncated data.mdb is a DataError naming it (before mapping: no bus error), damaged pages and
decompression bombs are corrupt records, counted and skipped."""
import shutil
import struct
import subprocess
import sys
import zlib

import lmdb
import pytest
from torch.utils.data import DataLoader

from tsr.data.lmdb_check import check_lmdb_file
from tsr.data.lmdb_dataset import TextZoomLMDB, collate
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.errors import DataError
from lmdb_records import pair


def bomb_png(width=40_000, height=40_000) -> bytes:
    """A valid PNG header declaring width x height 1-bit pixels (1.6 G pixels > 2 x PIL's MAX_IMAGE_PIXELS)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_truncated_data_mdb_is_a_data_error_naming_it(tmp_path):
    write_textzoom_lmdb(tmp_path / "db", [pair("word")] * 40)
    data = tmp_path / "db" / "data.mdb"
    check_lmdb_file(data)                                     # intact: no error
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataError, match=rf"{data} is truncated: {size // 2} bytes, but its header declares"):
        TextZoomLMDB(tmp_path / "db")
    with open(data, "r+b") as f:
        f.truncate(100)
    with pytest.raises(DataError, match="not an LMDB data file, or is cut short"):
        check_lmdb_file(data)


def test_truncated_lmdb_in_a_command_is_one_line_not_a_bus_error(tmp_path):
    write_textzoom_lmdb(tmp_path / "test" / "easy", [pair("word")] * 40)
    data = tmp_path / "test" / "easy" / "data.mdb"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    proc = subprocess.run([sys.executable, "-m", "tsr", "eval", "--data", str(tmp_path / "test"), "--splits", "easy",
                           "--out", str(tmp_path / "out"), "--workers", "0"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]             # a bus error is -7
    assert "is truncated" in proc.stderr and "Traceback" not in proc.stderr


def _damage_one_page(db) -> set:
    """Zero the first page whose loss leaves 'num-samples' readable but not some records; -> their indices."""
    data = db / "data.mdb"
    intact = data.read_bytes()
    for page in range(2, len(intact) // 4096):
        damaged = bytearray(intact)
        damaged[page * 4096:(page + 1) * 4096] = bytes(4096)
        data.write_bytes(bytes(damaged))
        env = lmdb.open(str(db), readonly=True, lock=False)
        bad = set()
        try:
            with env.begin() as txn:
                total = int(txn.get(b"num-samples"))
            for i in range(1, total + 1):
                for key in (b"label-%09d", b"image_hr-%09d", b"image_lr-%09d"):
                    try:
                        with env.begin() as txn:      # a transaction that met an error fails every later get
                            txn.get(key % i)
                    except lmdb.Error:
                        bad.add(i)
        except lmdb.Error:
            bad = set()
        finally:
            env.close()
        if bad:
            return bad
    raise AssertionError("no single page damages only some records; make the LMDB larger")


def test_damaged_pages_and_bombs_are_corrupt_records(tmp_path):
    records = [pair("word")] * 30
    records[3] = (bomb_png(), pair()[1], "bomb")
    write_textzoom_lmdb(tmp_path / "db", records)
    ds = TextZoomLMDB(tmp_path / "db")
    batches = list(DataLoader(ds, batch_size=8, collate_fn=collate))
    assert sum(b["corrupt"] for b in batches) == 1 and "bomb" not in sum((b["label"] for b in batches), [])
    shutil.copytree(tmp_path / "db", tmp_path / "damaged")
    bad = _damage_one_page(tmp_path / "damaged") | {4}
    assert len(bad) < 30                                     # records on intact pages stay readable
    ds = TextZoomLMDB(tmp_path / "damaged")                  # labels on the damaged page are corrupt records too
    batches = list(DataLoader(ds, batch_size=8, collate_fn=collate))
    kept = sum((b["index"].tolist() for b in batches), [])
    assert sum(b["corrupt"] for b in batches) == len(bad) and set(kept) == set(range(1, 31)) - bad
