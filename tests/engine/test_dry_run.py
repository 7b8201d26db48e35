"""`tsr train --dry-run` (tsr.engine.dry_run): checks, one forward/backward, the plan, and nothing written."""
import pytest

from tsr.cli import main as tsr_main
from tsr.data.synth import synthesize
from trainer_helpers import stage_config, tiny_overrides


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("drydata")
    synthesize(root, n_train=16, n_test=2, seed=4, workers=1)
    return root


def test_dry_run_prints_the_plan_and_writes_nothing(data_root, tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["train", "--config", stage_config("joint_image"), "--dry-run",
            *tiny_overrides(data_root, out, **{"run.name": "j", "train.init": "null", "train.batch_size": 8, "train.accum_steps": 2,
                                               "train.steps": 4})]
    assert tsr_main(args) == 0
    plan = capsys.readouterr().out
    assert "dry run: every check passed; nothing was written" in plan
    assert "batch: global 8 = 4/rank x 1 rank(s) x 2 accumulation" in plan
    assert "steps: 4 (2.00 epochs of 16 training samples)" in plan  # 4 x 8 / 16
    assert "first batch: loss " in plan and "(sr " in plan and "content " in plan and "gradients finite" in plan
    assert f"run folder: {out / 'j'}" in plan and "recognizer  CRNN" in plan
    assert not out.exists()


def test_dry_run_names_what_would_fail(data_root, tmp_path, capsys):
    bad = ["train", "--config", stage_config("sr"), "--dry-run",
           *tiny_overrides(data_root, tmp_path, **{"data.train_roots": f"[{tmp_path / 'missing'}]"})]
    assert tsr_main(bad) == 2
    assert "missing" in capsys.readouterr().err
    bad = ["train", "--config", stage_config("sr"), "--dry-run",
           *tiny_overrides(data_root, tmp_path, **{"train.init": str(tmp_path / "none.pth")})]
    assert tsr_main(bad) == 2
    assert "none.pth does not exist" in capsys.readouterr().err
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "last.pth").write_bytes(b"")
    taken = ["train", "--config", stage_config("sr"), "--dry-run", *tiny_overrides(data_root, tmp_path,
                                                                                   **{"run.name": "default"})]
    assert tsr_main(taken) == 2
    assert "already holds last.pth" in capsys.readouterr().err


def test_dry_run_reads_eval_recognizer_as_validation_does(data_root, tmp_path, capsys):
    """KIND:PATH is how eval.recognizer is documented; the dry run read the whole spec as a file name and refused
    'crnn:PATH' that the run itself accepts. A spec naming a checkpoint without a recognizer fails as in the run."""
    from tsr.checkpoint import save_checkpoint
    from trainer_helpers import tiny_stage

    cfg, model = tiny_stage("recognizer", data_root, tmp_path, **{"train.init": "null"})
    reader = save_checkpoint(tmp_path / "reader.pth", model, cfg, step=0)
    base = ["train", "--config", stage_config("sr"), "--dry-run"]
    assert tsr_main([*base, *tiny_overrides(data_root, tmp_path / "runs", **{"eval.recognizer": f"crnn:{reader}"})]) == 0
    assert "dry run: every check passed" in capsys.readouterr().out
    assert tsr_main([*base, *tiny_overrides(data_root, tmp_path / "runs", **{"eval.recognizer": f"aster:{reader}"})]) == 2
    assert "holds a recognizer of type CRNN, not ASTER" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_dry_run_names_the_setting_of_a_checkpoint_it_cannot_read(data_root, tmp_path, capsys):
    """train.init=<a run folder> said 'checkpoint ... is not a file', naming neither the setting nor what to give."""
    run = tmp_path / "sr"
    run.mkdir()
    (run / "last.pth").write_bytes(b"")
    (run / "best_psnr_model.pth").write_bytes(b"")
    base = ["train", "--config", stage_config("sr"), "--dry-run"]
    assert tsr_main([*base, *tiny_overrides(data_root, tmp_path / "runs", **{"train.init": str(run)})]) == 2
    assert capsys.readouterr().err == (f"tsr train: error: train.init: checkpoint {run} is a folder; expected a "
                                       f"checkpoint file (it holds best_psnr_model.pth, last.pth)\n")
    (tmp_path / "n.txt").write_text("hello\n")       # a file, but no checkpoint: named once (it said it twice)
    assert tsr_main([*base, *tiny_overrides(data_root, tmp_path / "runs", **{"train.init": tmp_path / "n.txt"})]) == 2
    assert capsys.readouterr().err.startswith(f"tsr train: error: train.init: {tmp_path / 'n.txt'}: not a PyTorch "
                                              "checkpoint file")
    assert tsr_main([*base, *tiny_overrides(data_root, tmp_path / "runs", **{"eval.recognizer": str(run)})]) == 2
    assert capsys.readouterr().err.startswith(f"tsr train: error: eval.recognizer: checkpoint {run} is a folder")
