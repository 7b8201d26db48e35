"""torchrun (torch.distributed.run, same arguments) for the launch scripts, quiet where a rank already said why it failed.

A tsr rank that stops on bad input prints one line (`tsr train (rank 0): error: ...`) and exits with tsr's status (2;
130 after Ctrl-C; 128 + signal when stopped): torchrun would then add its own ChildFailedError traceback, a "Root
Cause" block and its shutdown log lines (47 lines for a missing config) and exit 1, burying that line and the status.
Here such a failure ends with the rank's status and nothing more. A rank that died without a word (a Python traceback:
status 1; killed by a signal: the OOM killer) still gets torchrun's whole report, which then is the only account.
(Measured on 2 cores: no cost; the alternative, a single-process `tsr train --dry-run` before every torchrun, cost
seconds per stage and refuses the demo's finished runs that --reuse keeps.)"""
import logging
import os
import sys
import tempfile

from torch.distributed import run as torch_run
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

# the logger of torchrun's process handling: "failed (exitcode: 2) local_rank: 0 ...", "Sending process ... closing
# signal SIGTERM": withheld until the outcome says whether anyone needs them
WITHHELD = "torch.distributed.elastic.multiprocessing.api"


class _Withhold(logging.Filter):
    def __init__(self):
        super().__init__()
        self.records = []

    def filter(self, record):
        if record.levelno < logging.WARNING:
            return True
        self.records.append(record)
        return False


class _Plain(logging.Filter):
    """torchrun's own messages (its OMP_NUM_THREADS notice) as `python -m torch.distributed.run` prints them: there its
    logger is __main__'s, outside torch's log format; imported here, each line would gain a "W1130 12:00:00 ... run.py:874]"
    prefix."""

    def filter(self, record):
        print(record.getMessage(), file=sys.stderr)
        return False


def said_why(exitcode: int) -> bool:
    """tsr's command line prints one line before any status >= 2 (tsr/cli.py); 1 is a Python traceback, a negative
    code a signal that killed the rank."""
    return exitcode >= 2


def main(argv=None) -> int:
    args = torch_run.parse_args(argv)
    logging.getLogger(torch_run.__name__).addFilter(_Plain())
    logger = logging.getLogger(WITHHELD)
    withheld = _Withhold()
    logger.addFilter(withheld)
    # every rank meets the same bad config: each would print the same line; the first one says it (tsr/cli.py)
    said = tempfile.TemporaryDirectory(prefix="tsr-said-")
    os.environ["TSR_SAID"] = said.name
    try:
        torch_run.run(args)
        return 0
    except ChildFailedError as e:
        _, root = e.get_first_failure()
        if said_why(root.exitcode):
            withheld.records.clear()
            return root.exitcode
        _replay(logger, withheld)
        print(f"{type(e).__module__}.{type(e).__name__}: {e.format_msg()}", file=sys.stderr)
        return 1
    finally:
        said.cleanup()
        if withheld in logger.filters:
            _replay(logger, withheld)


def _replay(logger, withheld) -> None:
    logger.removeFilter(withheld)
    for record in withheld.records:
        logger.handle(record)
    withheld.records.clear()


if __name__ == "__main__":
    sys.exit(main())
