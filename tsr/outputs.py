"""Output paths, checked before any work starts: a long evaluation or training run must not end in a traceback
because its output folder is read-only or its output file is a folder. Nothing is created here; the check finds
the nearest existing folder on the way and proves it writable by creating (and removing) a temp file in it, which
also holds for root (who passes every permission bit check) on a read-only filesystem."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tsr.errors import TsrError


def check_output_dir(path: str | os.PathLike, what: str) -> Path:
    """`path` can be a folder tsr writes into (it exists as a writable folder, or can be made); else TsrError
    naming `what` (e.g. '--out') and the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TsrError(f"{what} {path} is a file; expected a folder (existing or new)")
    _check_writable(path, what, path)
    return path


def check_output_file(path: str | os.PathLike, what: str,
                      inputs: Mapping[str, str | os.PathLike | None] | None = None, example: str = "merged.pth",
                      replaces: tuple[str, Callable[[Path], bool]] | None = None) -> Path:
    """`path` can be written as a file: not a folder, not one of the command's `inputs` ({flag: path}; writing
    there would replace a file the command reads, e.g. a run's last.pth by a merge of it without its training
    state), and its folder is (or can be made) writable. `replaces` = (kind, test): an existing file there must
    pass `test` (be of the kind the command writes, e.g. an earlier plot's PNG), so that a mistyped --out never
    replaces a checkpoint or a log with a picture. `example` is a file name to suggest when `path` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise TsrError(f"{what} {path} is a folder; expected a file name (e.g. {path / example})")
    for flag, source in (inputs or {}).items():
        if source is not None and _same_file(path, Path(source)):
            raise TsrError(f"{what} {path} is the {flag} file: writing it would replace that input; choose another "
                           f"{what}")
    if replaces is not None and path.exists() and not replaces[1](path):
        raise TsrError(f"{what} {path} exists and is not {replaces[0]}; only {replaces[0]} is replaced there. Choose "
                       f"another {what} (or move that file away)")
    if replaces is None and path.is_file() and _is_run_file(path):
        # a training run's own files (last.pth with its optimizer and step, best_*.pth, log.jsonl) are the run's:
        # another command writing over one loses what no command can make again
        raise TsrError(f"{what} {path} is a file of the training run in {path.parent}; writing it would replace the "
                       f"run's own; choose another {what}")
    _check_writable(path.parent, what, path)
    return path


def _is_run_file(path: Path) -> bool:
    """One of the files `tsr train` keeps in a run folder (its config.yaml beside its log or checkpoint); other files
    there (a merge a user wrote beside the run) are anyone's."""
    from tsr.engine.run_folder import CONFIG, LAST, LOG_NAME, RUN_FILES

    folder = path.parent
    in_run = (folder / CONFIG).is_file() and any((folder / name).exists() for name in (LOG_NAME, LAST))
    return in_run and path.name in RUN_FILES


def check_apart(path: str | os.PathLike, what: str, inputs: Mapping[str, str | os.PathLike | None]) -> Path:
    """TsrError when output `path` is, holds, or lies inside one of the command's `inputs` ({flag: path}, files or
    folders, through links and relative spellings): what is written there would mix with the inputs, and an
    overwrite of `path` could delete them (tsr pack --out my_hr/ --overwrite)."""
    path = Path(path)
    for flag, source in inputs.items():
        if source is None:
            continue
        source = Path(source)
        kind = "folder" if source.is_dir() else "file"
        if _same_file(path, source):
            where = f"is the {flag} {kind}"
        elif _inside(path, source):
            where = f"lies inside the {flag} folder {source}"
        elif _inside(source, path):
            where = f"holds the {flag} {kind} {source}"
        else:
            continue
        raise TsrError(f"{what} {path} {where}; outputs go apart from the inputs, so that writing or replacing them "
                       f"never touches your files: choose another {what}")
    return path


def _inside(inner: Path, outer: Path) -> bool:
    """`inner` lies below folder `outer` (either may not exist yet)."""
    return any(_same_file(parent, outer) for parent in inner.resolve().parents)


def check_replaced(folder: str | os.PathLike, names: Sequence[str], what: str, overwrite: bool) -> list[str]:
    """The `names` that already exist in `folder`, where a command writes files of those names (a folder the user
    names may hold their own files: nothing there is replaced silently). TsrError naming `what` and the first few
    unless `overwrite` (the user's --overwrite); a folder of such a name is an error either way."""
    folder = Path(folder)
    existing = [name for name in names if os.path.lexists(folder / name)]
    for name in existing:
        if (folder / name).is_dir():
            raise TsrError(f"{what} {folder}: {name} there is a folder, where this run writes a file of that name; "
                           f"move it away or choose another {what}")
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise TsrError(f"{what} {folder} already holds {shown} (names this run's output takes); pass --overwrite to "
                       f"replace them, or choose another {what}")
    return existing


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names (links, '..', relative vs absolute), or two names of one file still to be made."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_writable(folder: Path, what: str, named: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise TsrError(f"{what} {named}: {existing} is a file, so no folder can be made there")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tsr-write-check.", dir=existing)
    except OSError as e:
        raise TsrError(f"{what} {named}: cannot write in {existing} ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)
