"""`tsr <command> ...`: one entry point; each command lives in tsr/commands/<name>.py and exposes
HELP, add_arguments(parser) and run(args) -> exit code."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from tsr.errors import TsrError

# name -> module under tsr.commands. Command modules import torch and friends inside run(), so that
# `tsr --help` and argument errors stay instant.
COMMANDS = {
    "synth": "synth",
    "train": "train",
    "eval": "evaluate",
    "config": "show_config",
    "merge": "merge",
    "convert": "convert",
    "sr": "sr",
    "read": "read",
    "profile": "profile",
    "bench": "bench",
    "quantize": "quantize",
    "export": "export",
    "show": "show",
    "pack": "pack",
    "plot": "plot",
}


class _ShowDefaults(argparse.HelpFormatter):
    """Help that ends each flag's text with its default, unless the text already says it or there is none to say."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    from tsr import __version__

    parser = argparse.ArgumentParser(prog="tsr", description="Scene-text super-resolution with a recognizer.")
    parser.add_argument("--version", action="version", version=f"tsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"tsr.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=_ShowDefaults)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A file name that is not UTF-8 (Latin-1 'caf\xe9.png') reaches Python as a str with surrogates, which a strict
    # UTF-8 stdout (a UTF-8 locale other than C.UTF-8) refuses: a path printed after the work ended in a traceback.
    # Print such names as the bytes they are, as Python does under the C locale (stderr already escapes them).
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    # under torchrun every rank may report; say which
    where = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""
    try:
        # numpy >= 2 imports numpy.random on first use, and a Ctrl-C that lands inside that import is lost (raised in
        # its compiled module's init, never seen again: `tsr synth` went on writing after Ctrl-C in ~1 of 12 tries
        # made at its first record): load it before the command starts working
        import numpy.random  # noqa: F401
        return int(args._run(args) or 0)
    except TsrError as e:
        # a TsrError may set `label` / `exit_code` (a run stopped by a signal: "stopped", 128 + signal)
        if str(e) and _first_to_say(f"{getattr(e, 'label', 'error')}: {e}"):
            print(f"tsr {args.command}{where}: {getattr(e, 'label', 'error')}: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except OSError as e:
        if e.filename is None:    # not about a path the user gave (a lost connection, ...): keep the traceback
            raise
        # a path the checks could not foresee (a disk that filled up, permissions changed mid-run)
        if _first_to_say(f"{e.filename}: {e.strerror or e}"):
            print(f"tsr {args.command}{where}: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if _first_to_say("interrupted (Ctrl-C)"):
            print(f"tsr {args.command}{where}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _first_to_say(message: str) -> bool:
    """Under launch/torchrun.py (TSR_SAID: a folder it made for this launch) a message that another rank of this node
    has already printed is not printed again: a bad config or data path stops every rank with the same line, and two
    copies that differ only in the rank read as two problems. Elsewhere every message is printed."""
    folder = os.environ.get("TSR_SAID")
    if not folder:
        return True
    import hashlib

    try:
        os.close(os.open(os.path.join(folder, hashlib.sha256(message.encode("utf-8", "surrogateescape")).hexdigest()[:32]),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    except OSError:
        pass   # the folder is gone or unwritable: better twice than never
    return True


def exit_process(code: int) -> None:
    """Leave the process with `code`. Under torchrun (WORLD_SIZE > 1) skip the interpreter's teardown: in about 1 of
    20 CPU runs, gloo's C++ threads were torn down at exit after a clean finish and the rank aborted ("terminate
    called without an active exception"), failing a finished run. Everything tsr writes is already fsynced and
    renamed into place by then; only the standard streams need flushing."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    exit_process(main())
