import json

from tsr.cli import main
from tsr.commands.evaluate import parse_ckpt_arg
from tsr.data.synth import synthesize


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


def test_eval_command_reports_a_bad_data_root(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "test root" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_checkpoint_labels():
    assert parse_ckpt_arg("runs/a/best_acc_model.pth") == ("runs/a/best_acc_model.pth", "best_acc_model")
    assert parse_ckpt_arg("runs/a/best.pth:sidernn-unc") == ("runs/a/best.pth", "sidernn-unc")
    assert parse_ckpt_arg("C:/runs/x.pth") == ("C:/runs/x.pth", "x")


def test_repeated_ckpt_flags_add_rows():
    from tsr.cli import build_parser
    repeated = build_parser().parse_args(["eval", "--data", "d", "--ckpt", "a.pth", "--ckpt", "b.pth:B"])
    listed = build_parser().parse_args(["eval", "--data", "d", "--ckpt", "a.pth", "b.pth:B"])
    assert repeated.ckpt == listed.ckpt == ["a.pth", "b.pth:B"]
    assert build_parser().parse_args(["eval", "--data", "d"]).ckpt == []
