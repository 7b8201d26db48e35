"""tsr.engine.run_folder.file_label: a checkpoint's name in a table label is its file stem, or its run folder's name
for the file names every run folder has (so that checkpoints/demo/a/last.pth and .../b/last.pth are two rows)."""
from tsr.engine.run_folder import BEST_ACC, BEST_PSNR, LAST, file_label


def test_generic_file_names_are_labelled_by_their_run_folder():
    assert [file_label(f"checkpoints/demo/reader_blur/{name}") for name in (LAST, BEST_ACC, BEST_PSNR)] == \
        ["reader_blur"] * 3


def test_other_file_names_keep_their_stem():
    assert file_label("weights/crnn_a.pth") == "crnn_a"
    assert file_label("checkpoints/demo/sr+recognizer_blur.pth") == "sr+recognizer_blur"
    assert file_label("last.pth") == "last"         # no folder to name it by


# ---------------------------------------------------------------- what a run folder lets a run do (tsr train)

import json
import logging
import shutil
from pathlib import Path

import pytest

from tsr.checkpoint import read_checkpoint
from tsr.cli import main
from trainer_helpers import stage_config, tiny_overrides


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from tsr.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n_train=16, n_test=2, seed=5, workers=1)
    return root


def tsr_train(*args):
    return main(["train", *[str(a) for a in args]])


def test_resume_of_a_finished_run_changes_nothing(data_root, tmp_path, capsys):
    assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{"train.steps": 2})) == 0
    run = tmp_path / "sr"
    before = {name: (run / name).read_bytes() for name in ("summary.json", "last.pth", "config.yaml", "train.log")}
    capsys.readouterr()
    assert tsr_train("--resume", run) == 2
    assert capsys.readouterr().err.strip() == (
        f"tsr train: error: --resume {run / 'last.pth'}: the run is at step 2 and train.steps is 2: nothing to train "
        f"(nothing was changed); to train it further, give train.steps above 2")
    assert {name: (run / name).read_bytes() for name in before} == before      # summary.json was rewritten before


def test_a_resume_may_lengthen_a_constant_schedule_not_a_cosine_one(data_root, tmp_path, capsys):
    for schedule in ("constant", "cosine"):
        overrides = tiny_overrides(data_root, tmp_path, **{"train.steps": 2, "train.lr_schedule": schedule,
                                                           "run.name": schedule})
        assert tsr_train("--config", stage_config("sr"), *overrides) == 0
    capsys.readouterr()
    assert tsr_train("--resume", tmp_path / "cosine", "train.steps=3") == 2
    assert "the given config differs from the run's in train.steps (2 vs 3: train.lr_schedule cosine depends on it)" \
        in capsys.readouterr().err
    assert tsr_train("--resume", tmp_path / "constant", "train.steps=3") == 0
    assert read_checkpoint(tmp_path / "constant" / "last.pth")["step"] == 3
    assert "steps: 3" in (tmp_path / "constant" / "config.yaml").read_text()   # the folder's config says so


def test_a_moved_run_folder_resumes_where_it_is_and_a_wrong_place_creates_nothing(data_root, tmp_path, capsys):
    overrides = tiny_overrides(data_root, tmp_path / "a", **{"train.steps": 2, "train.lr_schedule": "constant"})
    assert tsr_train("--config", stage_config("sr"), *overrides) == 0
    shutil.copytree(tmp_path / "a" / "sr", tmp_path / "b" / "sr_copy")
    assert tsr_train("--resume", tmp_path / "b" / "sr_copy", "train.steps=3") == 0
    assert read_checkpoint(tmp_path / "b" / "sr_copy" / "last.pth")["step"] == 3
    assert read_checkpoint(tmp_path / "a" / "sr" / "last.pth")["step"] == 2          # the original is untouched
    capsys.readouterr()
    # --config naming another folder: refused before anything is made there
    assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path / "c", **{
        "train.steps": 4, "train.lr_schedule": "constant"}), "--resume", tmp_path / "b" / "sr_copy") == 2
    assert "belongs to the run folder" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_a_dead_run_of_another_config_keeps_its_folder(data_root, tmp_path, capsys):
    run = tmp_path / "col"
    run.mkdir()
    dead = tiny_overrides(data_root, tmp_path, **{"run.name": "col", "train.steps": 12})
    from tsr.config import load_config, save_config
    save_config(load_config(stage_config("sr"), dead), run / "config.yaml")     # died before its first checkpoint
    (run / "log.jsonl").write_text('{"step": 1, "loss/total": 0.3}\n')
    other = tiny_overrides(data_root, tmp_path, **{"run.name": "col", "train.steps": 2})
    assert tsr_train("--config", stage_config("recognizer"), *other) == 2
    err = capsys.readouterr().err
    assert f"tsr train: error: {run} holds the logs of an earlier run of another config that saved no checkpoint " \
           "(config.yaml differs in " in err and "model.parts" in err
    assert (run / "log.jsonl").read_text() == '{"step": 1, "loss/total": 0.3}\n'
    same = tiny_overrides(data_root, tmp_path, **{"run.name": "col", "train.steps": 12})
    assert tsr_train("--config", stage_config("sr"), *same, "--dry-run") == 0     # the same config may start again


def test_dry_run_with_reuse_says_what_reuse_would_do(data_root, tmp_path, caplog):
    overrides = tiny_overrides(data_root, tmp_path, **{"train.steps": 2})
    assert tsr_train("--config", stage_config("sr"), *overrides) == 0
    caplog.clear()
    caplog.set_level(logging.INFO, logger="tsr")
    assert tsr_train("--config", stage_config("sr"), *overrides, "--reuse", "--dry-run") == 0   # was: refused
    assert f"{tmp_path / 'sr'}: finished with this config already, --reuse would keep it (dry run)" in caplog.text


def test_merge_never_writes_over_a_training_runs_checkpoint(data_root, tmp_path, capsys):
    assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{"train.steps": 1})) == 0
    for name in ("a", "b"):
        assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{
            "train.steps": 1, "run.name": name})) == 0
    last = tmp_path / "b" / "last.pth"
    before = last.read_bytes()
    capsys.readouterr()
    assert main(["merge", "--sr", str(tmp_path / "sr" / "last.pth"), "--out", str(last)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tsr merge: error: --out {last} is a file of the training run in {tmp_path / 'b'}; writing it would replace "
        "the run's own; choose another --out")
    assert last.read_bytes() == before
    assert main(["merge", "--sr", str(tmp_path / "sr" / "last.pth"), "--out", str(tmp_path / "merged.pth")]) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["steps"] == 1


def test_train_init_that_is_no_file_is_refused_before_the_run_folder_is_made(data_root, tmp_path, capsys):
    assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{"train.steps": 1})) == 0
    capsys.readouterr()
    run = tmp_path / "sr"
    overrides = tiny_overrides(data_root, tmp_path, **{"train.init": run, "run.name": "next"})
    assert tsr_train("--config", stage_config("sr"), *overrides) == 2
    assert capsys.readouterr().err == (f"tsr train: error: train.init: checkpoint {run} is a folder; expected a "
                                       f"checkpoint file (it holds best_psnr_model.pth, last.pth)\n")
    assert not (tmp_path / "next").exists()          # config.yaml and train.log were written there first


def test_a_run_stopped_in_its_last_step_is_finished_by_resume_and_reuse(data_root, tmp_path, capsys):
    """A signal in the last step saves last.pth at train.steps but no summary.json: the stop message says
    `--resume`, and --reuse resumes it; both finish it (refused at first by 99ad494: a second reader's finding)."""
    overrides = tiny_overrides(data_root, tmp_path, **{"train.steps": 2})
    assert tsr_train("--config", stage_config("sr"), *overrides) == 0
    (tmp_path / "sr" / "summary.json").unlink()                   # as a stop in step 2 leaves it
    assert tsr_train("--config", stage_config("sr"), *overrides, "--reuse") == 0
    assert json.loads((tmp_path / "sr" / "summary.json").read_text())["steps"] == 2
    (tmp_path / "sr" / "summary.json").unlink()
    assert tsr_train("--resume", tmp_path / "sr") == 0 and (tmp_path / "sr" / "summary.json").exists()
    capsys.readouterr()
    (tmp_path / "sr" / "summary.json").unlink()
    assert tsr_train("--resume", tmp_path / "sr", "train.steps=1") == 2          # beyond train.steps: refused
    assert "the run is at step 2 and train.steps is 1: nothing to train" in capsys.readouterr().err


def test_a_resume_keeps_the_runs_place_and_refuses_another(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    overrides = tiny_overrides(data_root, Path("r6"), **{"train.steps": 2, "train.lr_schedule": "constant"})
    assert tsr_train("--config", stage_config("sr"), *overrides) == 0
    # resumed by its absolute path, the run keeps run.out_root as it was spelled, so --reuse knows it again
    assert tsr_train("--resume", tmp_path / "r6" / "sr", "train.steps=3") == 0
    assert read_checkpoint(tmp_path / "r6" / "sr" / "last.pth")["config"]["run"]["out_root"] == "r6"
    capsys.readouterr()
    # run.* given with --resume name another folder: refused, not the original run extended
    assert tsr_train("--resume", tmp_path / "r6" / "sr", "run.name=fork", "train.steps=4") == 2
    assert "belongs to the run folder" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "r6" / "sr" / "last.pth")["step"] == 3 and not (tmp_path / "r6" / "fork").exists()


def test_a_file_a_user_wrote_into_a_run_folder_can_be_written_again(data_root, tmp_path):
    assert tsr_train("--config", stage_config("sr"), *tiny_overrides(data_root, tmp_path, **{"train.steps": 1})) == 0
    for _ in range(2):     # the second merge was refused as "a file of the training run"
        assert main(["merge", "--sr", str(tmp_path / "sr" / "best_psnr_model.pth"),
                     "--out", str(tmp_path / "sr" / "sr_only.pth")]) == 0
