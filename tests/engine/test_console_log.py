"""RUN/train.log, the progress lines of a job log, the extra TensorBoard scalars, and summary.json's provenance."""
import json
import logging

import pytest

from tsr.cli import main as tsr_main
from tsr.data.synth import synthesize
from tsr.engine.console_log import RunLog, capture, progress_line
from tsr.engine.monitor import read_log
from trainer_helpers import stage_config, tiny_overrides


def test_progress_line_has_step_elapsed_eta_lr_task_losses_and_rate():
    values = {"loss/total": 0.5, "loss/sr": 0.25, "loss/rec": 1.0, "lr": 1e-4, "images_per_s": 3.71}
    # resumed at step 10, 20 steps done in 40 s -> 2 s a step, 70 to go
    line = progress_line(30, 100, 10, 40.0, values)
    assert line == "step 30/100 (30%)  elapsed 0:40  eta 2:20  lr 0.0001  loss 0.5 (sr 0.25, rec 1)  3.7 images/s"
    assert "eta 1:00:00" in progress_line(1, 3601, 0, 1.0, {"loss/total": 1.0})
    assert "eta -" in progress_line(5, 10, 5, 0.0, {"loss/total": 1.0})


def test_records_before_open_wait_and_errors_end_the_log(tmp_path):
    with pytest.raises(ValueError):
        with capture(True) as run_log:
            logging.getLogger("tsr.train").info("before\nsecond line")
            run_log.open(tmp_path)
            run_log.write("table")
            raise ValueError("broken")
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert lines[0].endswith("  before") and lines[1].strip() == "second line" and lines[1].startswith(" " * 19)
    assert lines[2].endswith("  table") and lines[3].endswith("  error: ValueError: broken")
    assert not any(isinstance(h, RunLog) for h in logging.getLogger("tsr").handlers)
    # ranks > 0: nothing
    with capture(False) as run_log:
        assert run_log is None


def test_a_run_writes_train_log_progress_lines_and_summary_provenance(tmp_path, capsys):
    data = tmp_path / "data"
    synthesize(data, n_train=16, n_test=2, seed=4, workers=1)
    out = tmp_path / "runs"
    init = tmp_path / "sr_only.pth"
    # a first run whose weights start the second (strict=False load report in the second's log)
    assert tsr_main(["train", "--config", stage_config("sr"), *tiny_overrides(data, out, **{"run.name": "a"})]) == 0
    (out / "a" / "last.pth").rename(init)
    capsys.readouterr()
    assert tsr_main(["train", "--config", stage_config("joint_image"),
                     *tiny_overrides(data, out, **{"run.name": "b", "train.init": str(init),
                                                   "train.lr_scale": "{recognizer: 0.5}",
                                                   # a trainable classifier, so that the recognizer has an lr group
                                                   "model.recognizer.trainable": "head_only",
                                                   "train.tasks": "[sr,rec]", "train.task_weights": "{}",
                                                   # the sr-only weights are 48 of the 97 tensors
                                                   "train.init_min_loaded": "0.4"})]) == 0
    err = capsys.readouterr().err
    # stderr is not a terminal under pytest: a progress line per logged step
    assert "step 3/3 (100%)  elapsed " in err and " images/s" in err and "loss " in err and "(sr " in err
    log = (out / "b" / "train.log").read_text()
    for expected in ("command: ", "missing (left as initialised): recognizer.net.*", "step 1/3 (33%)",
                     "validation at step 3 (read by the model's own recognizer):", "| model   |", "A-SSIM", "done: 3 steps"):
        assert expected in log, expected
    assert log.splitlines()[0][:4].isdigit()  # timestamped
    records = read_log(out / "b" / "log.jsonl")
    last = [r for r in records if "loss/total" in r][-1]
    assert last["lr/recognizer"] == pytest.approx(0.5 * last["lr/sr"]) and last["lr/sr.no_decay"] == last["lr/sr"]
    validation = [r for r in records if "val/A/acc" in r][-1]
    assert 0 < validation["val/A/ssim"] < 1
    summary = json.loads((out / "b" / "summary.json").read_text())
    assert summary["provenance"]["world_size"] == 1 and summary["provenance"]["tsr_version"]
