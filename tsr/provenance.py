"""Where a file came from: the one place that collects what summary.json and every checkpoint record, so that
"which run made this file" has an answer (`tsr show CKPT` prints it)."""
from __future__ import annotations

import functools
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import tsr

# the repository holding the package (None for an installed wheel outside any git checkout)
_PACKAGE_ROOT = Path(tsr.__file__).resolve().parent.parent


def collect() -> dict:
    """Plain dict (strings, numbers, None; checkpoint-safe): command line, tsr version, git commit, torch / CUDA /
    cuDNN versions, this process's device name, world size, host. Cheap after the first call (git runs once)."""
    import torch

    from tsr import dist

    cuda = torch.cuda.is_available()
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "",
        "tsr_version": tsr.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": torch.cuda.get_device_name(torch.cuda.current_device()) if cuda else f"cpu ({platform.machine()})",
        "world_size": dist.world_size(),
        "host": socket.gethostname(),
    }


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the checkout tsr is imported from, '+dirty' when tracked files differ; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(_PACKAGE_ROOT), *args], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def render(record: dict | None) -> str:
    """A provenance dict as 'key: value' lines ('(none recorded)' for files written before tsr recorded it)."""
    if not record:
        return "  (none recorded)"
    return "\n".join(f"  {key}: {value}" for key, value in record.items())
