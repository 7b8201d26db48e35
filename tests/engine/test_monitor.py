"""tsr.engine.monitor: log.jsonl records, their trimming on resume, progress lines and messages, and the silent
monitor of ranks > 0."""
import json

import pytest

from tsr.engine.monitor import LOG_NAME, Monitor, keep_log_until, read_log
from tsr.errors import DataError


class Lines:
    """Stands in for RunLog: the lines a monitor hands to RUN/train.log."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)


def test_scalars_go_to_log_jsonl_and_a_progress_line(tmp_path, capsys):
    run_log = Lines()
    monitor = Monitor(tmp_path, enabled=True, total_steps=10, start_step=0, run_log=run_log)
    monitor.scalars(5, {"loss/total": 0.5, "loss/sr": 0.25, "lr": 0.001, "images_per_s": 8.0})
    monitor.scalars(6, {"val/A/psnr": 20.5})          # not a training step: no progress line
    monitor.message("validation at step 6")
    monitor.close()
    assert read_log(tmp_path / LOG_NAME) == [
        {"step": 5, "loss/total": 0.5, "loss/sr": 0.25, "lr": 0.001, "images_per_s": 8.0},
        {"step": 6, "val/A/psnr": 20.5}]
    err = capsys.readouterr().err                     # pytest's stderr is no terminal: lines, not a bar
    assert "step 5/10 (50%)" in err and "loss 0.5 (sr 0.25)" in err and "8.0 images/s" in err
    assert err.rstrip().endswith("validation at step 6")
    assert len(run_log.lines) == 2 and run_log.lines[0].startswith("step 5/10") and run_log.lines[1] == \
        "validation at step 6"
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())


def test_a_resumed_monitor_drops_what_the_interrupted_run_wrote_after_its_checkpoint(tmp_path):
    log = tmp_path / LOG_NAME
    records = "".join(json.dumps({"step": s, "loss/total": s / 10}) + "\n" for s in range(1, 6))
    log.write_text(records + '{"step": 6, "lo')       # killed while writing step 6
    monitor = Monitor(tmp_path, enabled=True, total_steps=10, start_step=3)
    monitor.scalars(4, {"loss/total": 9.0})
    monitor.close()
    assert [(r["step"], r["loss/total"]) for r in read_log(log)] == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 9.0)]


def test_keep_log_until_drops_a_torn_last_line_and_names_a_damaged_one(tmp_path):
    log = tmp_path / LOG_NAME
    keep_log_until(log, 3)
    assert not log.exists()
    log.write_text('{"step": 1}\n{"step": 2, "loss/total": 0.5}\n{"step": 4}\n{"step": 5, "lo')   # killed mid-line
    keep_log_until(log, 2)
    assert log.read_text() == '{"step": 1}\n{"step": 2, "loss/total": 0.5}\n'
    # a damaged line inside the log was dropped without a word (and [1, 2] was an AttributeError): one line now,
    # and the log is left as it was
    damaged = '{"step": 1}\n[1, 2]\n{"step": 2}\n'
    log.write_text(damaged)
    with pytest.raises(DataError, match=rf"^{log}:2: a JSON list, not an object"):
        keep_log_until(log, 2)
    assert log.read_text() == damaged
    keep_log_until(log, 0)                        # a fresh start in the folder keeps nothing, damaged or not
    assert log.read_text() == ""


def test_read_log_leaves_out_a_cut_last_line_and_names_any_other_bad_line(tmp_path):
    log = tmp_path / LOG_NAME
    good = '{"step": 1, "loss/total": 0.5}\n\n{"step": 2, "val/A/acc": null, "lr": NaN}\n'
    log.write_text(good)
    records = read_log(log)
    assert records[0] == {"step": 1, "loss/total": 0.5} and records[1]["val/A/acc"] is None and len(records) == 2
    torn = []
    log.write_text(good + '{"step": 3, "loss/to')     # a run killed while writing step 3
    assert read_log(log, on_torn=torn.append) == records and torn == [4]
    assert read_log(log) == records                     # no one to tell: left out all the same
    log.write_text(good + '{"step": 3}')                # complete, only its newline missing: kept
    assert read_log(log)[-1] == {"step": 3}
    for line, message in (('{"step": 3, "loss/to', "not a JSON line (Unterminated string"),   # cut, yet not last
                          ("[1, 2]", "a JSON list, not an object"),
                          ('{"loss/sr": 1.0}', 'a record without "step" (keys: [\'loss/sr\'])'),
                          ('{"step": "3"}', '"step" is "3"; expected an integer'),
                          ('{"step": 3, "loss/sr": [1]}', '"loss/sr" is [1]; expected a number (or null)')):
        log.write_text(good + line + "\n" + '{"step": 4}\n')
        with pytest.raises(DataError) as error:
            read_log(log, on_torn=torn.append)
        assert str(error.value).startswith(f"{log}:4: {message}")
    assert torn == [4]


def test_a_disabled_monitor_writes_and_prints_nothing(tmp_path, capsys):
    run_log = Lines()
    monitor = Monitor(tmp_path / "run", enabled=False, total_steps=10, start_step=0, run_log=run_log)
    monitor.step(1, 0.5, 8.0)
    monitor.scalars(1, {"loss/total": 0.5})
    monitor.picture("val/easy", [[[0, 0, 0]]], 1)
    monitor.message("hello")
    monitor.close()
    assert not (tmp_path / "run").exists() and run_log.lines == []
    assert capsys.readouterr() == ("", "")
