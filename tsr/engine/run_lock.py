"""One run folder, one run: RUN/run.lock, created exclusively, names the host and process that hold the folder.

A second `tsr train` into the same folder fails at once naming the holder, instead of interleaving log.jsonl and
overwriting last.pth. A lock left by a run that died without releasing it (kill -9, a node crash) is stale when
its process no longer exists on this host (or the pid now belongs to a process started later): it is taken over,
with a warning. A lock from another host cannot be checked from here; the error says how to remove it.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Optional

from tsr.errors import TsrError

log = logging.getLogger("tsr.train")
LOCK = "run.lock"


class RunLocked(TsrError):
    """The run folder is held by another live run."""


def _start_ticks(pid: int) -> Optional[int]:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); None if it does not exist or
    /proc is unavailable (then only existence is checked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, ticks: Optional[int]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                       # exists, owned by someone else
    return ticks is None or _start_ticks(pid) in (None, ticks)


class RunLock:
    """`acquire()` creates RUN/run.lock holding {host, pid, start ticks, since}; `release()` removes it if it is
    still ours."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "ticks": _start_ticks(os.getpid()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):               # create; or remove a stale lock and create again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                self._remove_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise RunLocked(f"{self.path}: could not take the run folder's lock (another run keeps taking it)")

    def _holder(self) -> Optional[dict]:
        """The lock's content; None once it is gone (released meanwhile), {} when it cannot be read."""
        for _ in range(2):
            try:
                return json.loads(self.path.read_text())
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                time.sleep(0.1)          # being written this instant
        return {}

    def _remove_if_stale(self) -> None:
        holder = self._holder()
        if holder is None:
            return
        host, pid = holder.get("host"), holder.get("pid")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid, holder.get("ticks")):
            if self._remove_exactly(holder):
                log.warning("%s: took over the lock of process %d on %s, which no longer runs (started %s)",
                            self.path, pid, host, holder.get("since", "?"))
            return
        raise RunLocked(f"run folder {self.path.parent} is in use by another run (process {pid} on host {host}, "
                        f"since {holder.get('since', '?')}); choose another run.name, or wait for it to end. If that "
                        f"run is dead (e.g. its node crashed), delete {self.path}")

    def _remove_exactly(self, holder: dict) -> bool:
        """Remove the lock file if it still holds `holder` (the stale lock judged); True if removed. Two runs that
        both judged one stale lock must not both remove it: the second would remove the first's new lock. So the
        file is first renamed to a name of this process's own (atomic: of several, one gets it), then read: another
        holder's fresh lock is put back (unless a newer one is there already) and left alone."""
        claim = self.path.with_name(f".{LOCK}.{os.getpid()}.{time.monotonic_ns()}.claim")
        try:
            os.rename(self.path, claim)
        except FileNotFoundError:
            return False                 # removed or taken over meanwhile: creating it again decides
        try:
            stale = json.loads(claim.read_text()) == holder
        except (OSError, ValueError):
            stale = False                # empty or half-written: a new holder writing it this instant
        if not stale:
            try:
                os.link(claim, self.path)     # back where it was (its holder may still be writing through its fd)
            except OSError:
                pass                     # a third run's lock is at the path already: the one judged is lost
                                         # (three runs starting into one folder at once; not handled)
        claim.unlink(missing_ok=True)
        return stale

    def release(self) -> None:
        """Remove the lock if it is still ours (a lock file of another run at the path is left alone)."""
        if self.held:
            holder = self._holder()
            if holder is None or (holder.get("host"), holder.get("pid")) == (socket.gethostname(), os.getpid()):
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
