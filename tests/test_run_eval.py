"""tsr eval's input checks: labels left out are reported per split, an empty split is an error, checkpoints whose
SR size differs from the evaluation's HR size are refused before evaluating."""
import pytest

from tsr.cli import main
from tsr.data.lmdb_writer import write_textzoom_lmdb
from test_api_and_commands import small_checkpoint
from test_data_lmdb import pair


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
