"""Check an LMDB file against its own header before it is memory-mapped.

LMDB maps data.mdb and reads pages straight from the mapping; a page past the end of a truncated file is a bus
error (SIGBUS kills the process without a message). data.mdb begins with two meta pages (LMDB's MDB_meta, 64-bit
layout): the one with the larger transaction id is current, and its last page number says how long the file must
be. Layout of a meta page: page header (pgno u64, pad u16, flags u16, lower u16, upper u16) = 16 bytes, then
magic u32, version u32, address u64, mapsize u64, two MDB_db records of 48 bytes (the first one's leading u32
holds the page size), last_pgno u64, txnid u64.
"""
from __future__ import annotations

import struct
from pathlib import Path

from tsr.errors import DataError

MAGIC = 0xBEEFC0DE
_META = struct.Struct("<II16x48x48xQQ")     # magic, version, (address, mapsize, dbs), last_pgno, txnid
_META_OFFSET = 16                           # after the page header
_PAGE_SIZE_OFFSET = 40                      # md_pad of the free-pages DB record holds the page size


def check_lmdb_file(data_mdb: str | Path) -> None:
    """DataError naming `data_mdb` when it is not an LMDB data file, or shorter than its header declares."""
    path = Path(data_mdb)
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(_PAGE_SIZE_OFFSET + 4)
        page_size = struct.unpack_from("<I", first, _PAGE_SIZE_OFFSET)[0] if len(first) == _PAGE_SIZE_OFFSET + 4 else 0
        if page_size < 512 or page_size & (page_size - 1) or size < 2 * page_size:
            raise DataError(f"{path} is not an LMDB data file, or is cut short ({size} bytes; an LMDB starts with two "
                            "meta pages)")
        metas = []
        for page in (0, 1):
            f.seek(page * page_size + _META_OFFSET)
            magic, version, last_pgno, txnid = _META.unpack(f.read(_META.size))
            if magic != MAGIC:
                raise DataError(f"{path} is not an LMDB data file (meta page {page} has magic {magic:#x}, "
                                f"expected {MAGIC:#x})")
            metas.append((txnid, last_pgno))
    _, last_pgno = max(metas)
    needed = (last_pgno + 1) * page_size
    if size < needed:
        raise DataError(f"{path} is truncated: {size} bytes, but its header declares {last_pgno + 1} pages of "
                        f"{page_size} bytes ({needed} bytes); copy or write it again")
