"""RUN/train.log: what a person reads after the fact. Every line the run shows (tsr's log records, validation tables,
the strict=False load report, progress lines, the error that stopped it), each with a timestamp; rank 0 only.

Records logged before the run folder is known (or checked: a refused run must not write into another run's
folder) wait in memory and are written when `open` is called."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

LOG_FILE = "train.log"


class RunLog(logging.Handler):
    """A logging handler on the "tsr" logger that appends to RUN/train.log; `write` takes text that is printed
    outside logging (progress lines, tables)."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.path: Optional[Path] = None
        self.pending: list[str] = []

    def open(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending, self.pending = self.pending, []
        self._append(pending)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(record.getMessage(), record.created)
        except Exception:  # noqa: BLE001 - logging's rule: a handler never raises into the code that logged
            self.handleError(record)

    def write(self, text: str, created: Optional[float] = None) -> None:
        """`text` (several lines are kept together under one timestamp, continuation lines indented)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created or time.time()))
        first, *rest = text.rstrip("\n").split("\n")
        lines = [f"{stamp}  {first}", *(f"{' ' * len(stamp)}  {line}" for line in rest)]
        if self.path is None:
            self.pending += lines
        else:
            self._append(lines)

    def _append(self, lines: list[str]) -> None:
        # open per write: the file is complete after every line even if the process is killed
        if lines:
            with open(self.path, "a") as f:
                f.write("".join(line + "\n" for line in lines))


@contextmanager
def capture(enabled: bool) -> Iterator[Optional[RunLog]]:
    """Attach a RunLog to the "tsr" logger for the duration (None when not `enabled`, e.g. ranks > 0); the error
    that ends the block, if any, is its last line."""
    if not enabled:
        yield None
        return
    handler = RunLog()
    logger = logging.getLogger("tsr")
    # the logger passes INFO on to its handlers whatever the console's level is
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    except BaseException as e:
        if handler.path is not None:
            handler.write(f"error: {type(e).__name__}: {e}")
        raise
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def progress_line(step: int, total: int, start_step: int, elapsed: float, values: dict) -> str:
    """'step 10/30 (33%)  elapsed 0:12  eta 0:24  lr 0.0001  loss 0.049 (sr 0.041, rec 0.8)  3.7 images/s':
    the line a job log gets per logged step. `elapsed`: seconds since this process started at `start_step`
    (the ETA extrapolates its pace); `values`: the logged scalars (loss/total, loss/<task>, lr, images_per_s)."""
    done = step - start_step
    eta = elapsed / done * (total - step) if done > 0 else None
    tasks = ", ".join(f"{name[5:]} {value:.4g}" for name, value in values.items()
                      if name.startswith("loss/") and name != "loss/total")
    parts = [f"step {step}/{total} ({100 * step // max(total, 1)}%)", f"elapsed {_clock(elapsed)}",
             f"eta {_clock(eta) if eta is not None else '-'}"]
    if "lr" in values:
        parts.append(f"lr {values['lr']:.3g}")
    parts.append(f"loss {values['loss/total']:.4g}" + (f" ({tasks})" if tasks else ""))
    parts.append(f"{values.get('images_per_s', 0):.1f} images/s")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    """Seconds -> 'M:SS' or 'H:MM:SS'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
