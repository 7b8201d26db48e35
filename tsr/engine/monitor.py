"""What a run reports, on rank 0 only: TensorBoard scalars and pictures, log.jsonl (one JSON line per logged step,
the record a resumed run is compared with), a tqdm bar with loss and images/s on a terminal or else a progress line
per logged step, and RUN/train.log (tsr.engine.console_log). Other ranks get a Monitor
that does nothing, so the trainer never asks who it is before reporting."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional
import numpy as np

from tsr.engine.console_log import RunLog, progress_line
from tsr.errors import DataError
from tsr.io import atomic_write_text

LOG_NAME = "log.jsonl"


class Monitor:
    def __init__(self, run_dir: Path, enabled: bool, total_steps: int, start_step: int,
                 run_log: Optional[RunLog] = None):
        self.enabled = enabled
        self.writer = self.bar = None
        self.total_steps, self.start_step, self.started = total_steps, start_step, time.monotonic()
        self.run_log = run_log  # RUN/train.log: every line shown here, timestamped (tsr.engine.console_log)
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.log_path = run_dir / LOG_NAME
        keep_log_until(self.log_path, start_step)
        # purge_step: a resumed run drops the events the interrupted one wrote after its last checkpoint (those of
        # the checkpoint's own step were written before it and stay, as in log.jsonl)
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)
        # A bar on a terminal; in files (CI, cluster job logs) a plain line per logged step instead of redraws.
        if sys.stderr.isatty():
            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True,
                            file=sys.stderr)

    def step(self, step: int, loss: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", img_s=f"{images_per_s:.1f}", refresh=False)
            self.bar.update(step - self.bar.n)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        if "loss/total" in values:
            line = progress_line(step, self.total_steps, self.start_step, time.monotonic() - self.started, values)
            if self.bar is None:
                print(line, file=sys.stderr, flush=True)
            if self.run_log is not None:
                self.run_log.write(line)
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        with open(self.log_path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def picture(self, tag: str, image, step: int) -> None:
        if self.enabled:
            self.writer.add_image(tag, np.asarray(image), step, dataformats="HWC")

    def message(self, text: str) -> None:
        """A line that does not tear the progress bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr)
        if self.enabled and self.run_log is not None:
            self.run_log.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def keep_log_until(path: Path, step: int) -> None:
    """Drop records after `step` (written by an interrupted run after its last checkpoint; the resumed run writes
    them again) and a torn last line from a killed process. Atomic: the log is never half-rewritten."""
    if not path.exists():
        return
    # read_log leaves out the torn last line and names any other damaged line (a resume never drops one silently);
    # a fresh start (step 0) keeps nothing, so it need not read what a dead run left
    kept = [record for record in read_log(path) if record["step"] <= step] if step > 0 else []
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))


def read_log(path: Path, on_torn: Optional[Callable[[int], None]] = None) -> list[dict]:
    """The records of a log.jsonl: JSON objects with an integer "step" and numbers (or null) for the rest.

    A last line without its newline that is not JSON is one a process killed mid-write left (each record is
    written with its newline, so a cut line is always the last and never complete): it is left out, and
    `on_torn(its line number)` told. Any other line that is not such a record is a DataError naming path:line, so a
    damaged log is never read as a shorter good one."""
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as e:                 # JSONDecodeError, or bytes that are not UTF-8 text
            if number == len(lines):            # no newline after it: cut short
                if on_torn is not None:
                    on_torn(number)
                continue
            detail = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
            raise DataError(f"{path}:{number}: not a JSON line ({detail}); expected one JSON object per line, as "
                            f"tsr train writes") from None
        records.append(_checked_record(record, path, number))
    return records


def _checked_record(record, path: Path, number: int) -> dict:
    where = f"{path}:{number}"
    if not isinstance(record, dict):
        raise DataError(f"{where}: a JSON {type(record).__name__}, not an object; expected one record per line "
                        f'({{"step": N, "loss/total": ...}})')
    if "step" not in record:
        raise DataError(f'{where}: a record without "step" (keys: {sorted(record)[:6]}); every record has its step')
    for key, value in record.items():
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key == "step" and not (number_ok and isinstance(value, int)):
            raise DataError(f'{where}: "step" is {json.dumps(value)}; expected an integer')
        if not number_ok and value is not None:
            raise DataError(f'{where}: "{key}" is {json.dumps(value)[:40]}; expected a number (or null)')
    return record
