"""SIGTERM (what cluster schedulers send before preemption) and SIGINT (Ctrl-C) during training: noted, not acted on
at once. The trainer reads `received` at its per-step all-reduce, so every rank stops after the same step (a
signal may reach one rank only), writes last.pth, says where, and exits with 128 + the signal's number.

Installed in the main thread before the data loaders start their workers, which inherit the handler (a worker
hit by the terminal's Ctrl-C then keeps serving batches until the step ends, instead of dying mid-step).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Optional

from tsr.errors import TsrError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(TsrError):
    """The run stopped on a signal after saving its state; `exit_code` = 128 + the signal's number."""

    label = "stopped"                 # the command line prints "tsr train: stopped: <message>"

    def __init__(self, message: str, signum: int):
        super().__init__(message)     # empty on ranks other than 0: one line per run, not per rank
        self.exit_code = 128 + signum


class StopSignals:
    """Context manager: while inside, SIGTERM / SIGINT set `received` (the first signal's number) instead of
    ending the process; the previous handlers come back on exit."""

    def __init__(self, announce: bool = True):
        self.received: Optional[int] = None
        self.announce = announce
        self._previous: dict = {}
        self._pid = os.getpid()

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:  # a data-loader worker that inherited the handler: the trainer decides
            return
        if self.received is None:
            self.received = signum
            if self.announce:
                print(f"[tsr] {signal.Signals(signum).name} received: stopping after the current step and saving "
                      "last.pth", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():   # handlers can only be set there
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
