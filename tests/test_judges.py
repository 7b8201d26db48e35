"""Judges (KIND:PATH) and `tsr read`."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from public_recognizer_files import write_public_files
from tsr.cli import main
from tsr.commands.read import predictions_tsv
from tsr.errors import TsrError
from tsr.judges import load_judge, load_judges, parse_spec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_public_files(tmp_path_factory.mktemp("public"))


def test_parse_spec():
    assert parse_spec("aster:demo.pth.tar") == ("aster", "demo.pth.tar")
    assert parse_spec("MORAN:/w/moran.pth") == ("moran", "/w/moran.pth")
    assert parse_spec("runs/a:b/best.pth") == (None, "runs/a:b/best.pth")    # not a kind: a path
    with pytest.raises(TsrError, match="no path after 'crnn:'"):
        parse_spec("crnn:")


def test_judges_read_normalised_words(files):
    images = torch.rand(2, 4, 32, 128)
    for kind in ("crnn", "aster", "moran"):
        judge = load_judge(f"{kind}:{files[kind]}")
        assert judge.kind == kind and judge.hr_size == (32, 128)
        words = judge.read(images)
        assert len(words) == 2 and all(w == "".join(c for c in w.lower() if c.isalnum()) for w in words)


def test_wrong_kind_is_a_one_line_error(files):
    with pytest.raises(TsrError) as error:
        load_judge(f"aster:{files['moran']}")
    assert str(error.value) == (f"recognizer 'aster:{files['moran']}': {files['moran']} holds a recognizer of type "
                                f"MORAN, not ASTER; use moran:{files['moran']}")


def test_two_judges_of_one_kind_get_their_file_names(files, tmp_path):
    other = tmp_path / "crnn_b.pth"
    other.write_bytes(files["crnn"].read_bytes())
    judges = load_judges([f"crnn:{files['crnn']}", str(other), f"moran:{files['moran']}"])
    assert [j.name for j in judges] == ["CRNN (crnn)", "CRNN (crnn_b)", "MORAN"]


def test_predictions_tsv_quotes_awkward_names():
    text = predictions_tsv([("a.png", "word"), ("b\tc.png", "x1"), ("d\ne.png", "")])
    assert text.splitlines()[0] == "file\ttext"
    assert list(csv.reader(text.splitlines(keepends=True), delimiter="\t")) == [
        ["file", "text"], ["a.png", "word"], ["b\tc.png", "x1"], ["d\ne.png", ""]]


def test_read_command(files, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, size in (("a.png", (100, 32)), ("b\tc.png", (37, 11)), ("d.jpg", (300, 70))):
        Image.new("RGB", size, (200, 120, 40)).save(folder / name)
    out = tmp_path / "out"
    assert main(["read", "--recognizer", f"moran:{files['moran']}", "--input", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read 3 image(s) with MORAN" in printed and "at 32x128" in printed
    rows = list(csv.reader(open(out / "predictions.tsv", newline=""), delimiter="\t"))
    assert [r[0] for r in rows] == ["file", "a.png", "b\tc.png", "d.jpg"]
    judge = load_judge(f"moran:{files['moran']}")
    image = Image.open(folder / "d.jpg").convert("RGB").resize((128, 32), Image.BICUBIC)   # resized to HR size first
    tensor = torch.tensor(np.asarray(image)).permute(2, 0, 1).float().div(255)
    assert rows[3][1] == judge.read(tensor[None])[0]
    assert main(["read", "--recognizer", f"crnn:{files['aster']}", "--input", str(folder), "--out", str(out)]) == 2
    assert "holds a recognizer of type ASTER, not CRNN" in capsys.readouterr().err
