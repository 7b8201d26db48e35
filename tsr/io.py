"""Atomic file writes: a temp file in the same folder, fsync, then rename, so readers (and a run killed
mid-write) only ever see the old file or the complete new one. Files and folders tsr writes get the permissions
an ordinary `open()` / `mkdir` would give them (the umask decides; tempfile alone makes them private, 0600/0700),
so lab-mates on a shared cluster can read results; a file that is replaced keeps its mode."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, IO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(f)` on a temp file next to `path`, then atomically replace `path` with it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def umask() -> int:
    """This process's umask (Linux reports it in /proc; elsewhere it is set and restored, which is not
    thread-safe but brief)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_dir(parent: Path, prefix: str, suffix: str) -> Path:
    """tempfile.mkdtemp in `parent` (a folder that will be renamed into place), with the umask's permissions."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    folder.chmod(0o777 & ~umask())
    return folder


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files that `atomic_write` calls killed mid-write left in `folder` (`.NAME.XXXX.tmp`); only
    for a folder this process owns (a locked run folder), since another writer's temp file looks the same."""
    folder = Path(folder)
    removed = sorted(p for p in folder.glob(".*.tmp") if p.is_file()) if folder.is_dir() else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
