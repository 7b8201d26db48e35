"""tsr eval end to end: baseline tables, bad roots, checkpoint labels; input checks (labels left out are reported
per split, an empty split is an error, checkpoints whose SR size differs from the evaluation's HR size are refused
before evaluating)."""
import json

import pytest

from tsr.cli import main
from tsr.commands.evaluate import parse_ckpt_arg
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.data.synth import synthesize

from lmdb_records import pair
from test_api_and_commands import small_checkpoint


def test_eval_command_writes_baseline_tables(tmp_path, capsys):
    synthesize(tmp_path / "d", n_train=0, n_test=5, seed=2, workers=1)
    code = main(["eval", "--data", str(tmp_path / "d" / "test"), "--out", str(tmp_path / "out"), "--batch-size", "2",
                 "--workers", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| arch    | E-PSNR | M-PSNR | H-PSNR | A-PSNR |" in printed
    assert "evaluated 15 test records x 2 rows in " in printed and " s on 1 process(es), cpu" in printed
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [row["name"] for row in data["rows"]] == ["bicubic", "HR"]
    bicubic = data["rows"][0]["results"]
    assert [bicubic[s]["n"] for s in ("easy", "medium", "hard", "A")] == [5, 5, 5, 15]
    assert bicubic["easy"]["psnr"] > bicubic["hard"]["psnr"] and bicubic["A"]["acc"] is None
    assert (tmp_path / "out" / "config.yaml").is_file()


def test_eval_limit_reads_the_first_records_of_each_split(tmp_path, capsys):
    synthesize(tmp_path / "d", n_train=0, n_test=5, seed=2, workers=1)
    args = ["eval", "--data", str(tmp_path / "d" / "test"), "--batch-size", "2", "--workers", "0", "--pictures", "0"]
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    assert main([*args, "--out", str(tmp_path / "first3"), "--limit", "3"]) == 0
    every, first = (json.loads((tmp_path / d / "results.json").read_text())["rows"][0]["results"] for d in ("all", "first3"))
    assert [first[s]["n"] for s in ("easy", "medium", "hard", "A")] == [3, 3, 3, 9]
    assert first["easy"]["psnr"] != every["easy"]["psnr"]
    assert "evaluated 9 test records x 2 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--limit", "0"])
    assert "--limit: expected a whole number >= 1, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, least", [("--batch-size", "0", 1), ("--batch-size", "-5", 1),
                                               ("--workers", "-1", 0), ("--pictures", "-1", 0),
                                               ("--pictures-font", "0", 1)])
def test_eval_flags_out_of_range_are_refused_before_any_work(flag, value, least, tmp_path, capsys):
    with pytest.raises(SystemExit):   # argparse: exit 2, before the data is opened
        main(["eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), flag, value])
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and f": expected a whole number >= {least}, got '{value}'" in err


def test_eval_batch_size_defaults_to_the_configs_eval_batch_size_and_splits_are_named_once(tmp_path, capsys):
    synthesize(tmp_path / "d", n_train=0, n_test=5, seed=2, workers=1)
    args = ["eval", "--data", str(tmp_path / "d" / "test"), "--workers", "0", "--pictures", "0"]
    assert main([*args, "--out", str(tmp_path / "o"), "eval.batch_size=4"]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["rows"][0]["results"]["A"]["batch_size"] == 4
    assert main([*args, "--out", str(tmp_path / "dup"), "--splits", "easy", "easy", "hard"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"test splits ['easy', 'easy', 'hard'] name easy more than once (expected each split folder of "
        f"{tmp_path / 'd' / 'test'} once)")


def test_eval_command_reports_a_bad_data_root(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "test root" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_checkpoint_labels():
    # the file names every run folder has are labelled by their run folder
    assert parse_ckpt_arg("runs/a/best_acc_model.pth") == ("runs/a/best_acc_model.pth", "a")
    assert parse_ckpt_arg("runs/a/tsrn.pth") == ("runs/a/tsrn.pth", "tsrn")
    assert parse_ckpt_arg("runs/a/best.pth:sidernn-unc") == ("runs/a/best.pth", "sidernn-unc")
    assert parse_ckpt_arg("C:/runs/x.pth") == ("C:/runs/x.pth", "x")


def test_two_checkpoints_of_one_label_are_refused_before_evaluating(tmp_path, capsys):
    # both would be the row 'last' without run folders to tell them apart: one line, exit 2, nothing written
    argv = ["eval", "--data", str(tmp_path), "--ckpt", "x/last.pth", "y/last.pth", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "would both be the row" not in err      # run folders differ: so do the labels (the data is what fails)
    argv = ["eval", "--data", str(tmp_path), "--ckpt", "runs/a/last.pth", "other/a/best_psnr_model.pth",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "runs/a/last.pth and other/a/best_psnr_model.pth would both be the row 'a'" in err
    assert "PATH:LABEL" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    assert main(["eval", "--data", str(tmp_path), "--ckpt", "x/last.pth:HR", "--out", str(tmp_path / "out")]) == 2
    assert "the HR row and x/last.pth would both be the row 'HR'" in capsys.readouterr().err


def test_repeated_ckpt_flags_add_rows():
    from tsr.cli import build_parser
    repeated = build_parser().parse_args(["eval", "--data", "d", "--ckpt", "a.pth", "--ckpt", "b.pth:B"])
    listed = build_parser().parse_args(["eval", "--data", "d", "--ckpt", "a.pth", "b.pth:B"])
    assert repeated.ckpt == listed.ckpt == ["a.pth", "b.pth:B"]
    assert build_parser().parse_args(["eval", "--data", "d"]).ckpt == []


@pytest.fixture
def test_root(tmp_path):
    write_textzoom_lmdb(tmp_path / "t" / "easy", [pair("ok"), pair("!!"), pair("x" * 30), pair("fine")])
    write_textzoom_lmdb(tmp_path / "t" / "hard", [pair("...")])
    return tmp_path / "t"


def test_eval_reports_dropped_labels_and_refuses_an_empty_split(test_root, tmp_path, capsys):
    assert main(["eval", "--data", str(test_root), "--splits", "easy", "--out", str(tmp_path / "o"),
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert (f"easy: {test_root / 'easy'}: kept 2 of 4 records (left out 1 label(s) empty once characters outside "
            "the 'lower' charset are removed, 1 longer than data.max_len 25)") in out
    assert main(["eval", "--data", str(test_root), "--splits", "easy", "hard", "--out", str(tmp_path / "o2"),
                 "--workers", "0"]) == 2
    assert "test split 'hard' has nothing to evaluate: " in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_eval_refuses_a_checkpoint_of_another_image_size(test_root, tmp_path, capsys):
    small_checkpoint(tmp_path / "c.pth")
    assert main(["eval", "--data", str(test_root), "--splits", "easy", "--ckpt", str(tmp_path / "c.pth"),
                 "--out", str(tmp_path / "o"), "--workers", "0", "data.hr_width=100"]) == 2
    assert "turns 16x64 LR images into 32x128 SR images, but this evaluation reads LR 16x64 and HR 32x100" \
        in capsys.readouterr().err


def test_eval_own_reading_is_one_more_judge(test_root, tmp_path, capsys):
    small_checkpoint(tmp_path / "sr.pth", "model.parts=[sr,head]")
    args = ["eval", "--data", str(test_root), "--splits", "easy", "--workers", "0"]
    assert main([*args, "--ckpt", str(tmp_path / "sr.pth"), "--recognizer", "own", "--out", str(tmp_path / "o")]) == 2
    assert ("--recognizer own: none of the checkpoints has a recognizer to read its own output"
            in capsys.readouterr().err)
    small_checkpoint(tmp_path / "full.pth")
    # an image-level model reads its own SR image: the same words as its recognizer given as a judge
    assert main([*args, "--ckpt", f"{tmp_path / 'full.pth'}:full", "--recognizer", str(tmp_path / "full.pth"),
                 "--recognizer", "own", "--out", str(tmp_path / "o2")]) == 0
    assert "| method  | CRNN E | CRNN A | own E | own A |" in capsys.readouterr().out
    results = json.loads((tmp_path / "o2" / "results.json").read_text())
    rows = {row["name"]: row["results"]["easy"] for row in results["rows"]}
    assert list(rows["full"]["judges"]) == ["CRNN", "own"]
    assert rows["full"]["judges"]["own"] == rows["full"]["judges"]["CRNN"]
    assert rows["full"]["judges"]["own"]["ned"] is not None
    assert rows["bicubic"]["judges"]["own"] == {"acc": None, "ned": None} == rows["HR"]["judges"]["own"]
