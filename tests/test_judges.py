"""Judges (KIND:PATH) and `tsr read`."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from public_recognizer_files import write_public_files
from tsr.cli import main
from tsr.commands.sr import predictions_tsv
from tsr.errors import TsrError
from tsr.judges import load_judge, load_judges, parse_spec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_public_files(tmp_path_factory.mktemp("public"))


def test_parse_spec():
    assert parse_spec("aster:demo.pth.tar") == ("aster", "demo.pth.tar")
    assert parse_spec("MORAN:/w/moran.pth") == ("moran", "/w/moran.pth")
    assert parse_spec("convctc:runs/reader/best.pth") == ("convctc", "runs/reader/best.pth")   # the demo's reader
    assert parse_spec("runs/a:b/best.pth") == (None, "runs/a:b/best.pth")    # not a kind: a path
    with pytest.raises(TsrError, match="no path after 'crnn:'"):
        parse_spec("crnn:")


def test_a_mistyped_kind_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TsrError, match=r"^recognizer 'crn:x.pth': 'crn' is not a recognizer kind \(crnn \| aster \| "
                                       r"moran \| convctc\) and no file 'crn:x.pth' exists \(expected KIND:PATH or a "
                                       r"checkpoint path\)$"):
        load_judge("crn:x.pth")
    with pytest.raises(TsrError, match=r"^checkpoint runs/a:b/best.pth does not exist"):   # a path with ':' stays a path
        load_judge("runs/a:b/best.pth")


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


def test_judges_in_run_folders_get_their_run_names(files, tmp_path):
    specs = []
    for run, file in (("reader", "best_acc_model.pth"), ("reader_blur", "best_acc_model.pth"), ("x", "last.pth")):
        (tmp_path / run).mkdir()
        (tmp_path / run / file).write_bytes(files["crnn"].read_bytes())
        specs.append(str(tmp_path / run / file))
    assert [j.name for j in load_judges(specs)] == ["CRNN (reader)", "CRNN (reader_blur)", "CRNN (x)"]


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


@pytest.fixture(scope="module")
def tiny_test_root(tmp_path_factory):
    from tsr.data.synth import synthesize

    out = tmp_path_factory.mktemp("judgesynth")
    synthesize(out, n_train=0, n_test=2, seed=3, workers=1)
    return out / "test"


def test_eval_with_three_judges(files, tiny_test_root, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--data", str(tiny_test_root), "--out", str(out), "--workers", "0"]
    for kind in ("crnn", "aster", "moran"):
        args += ["--recognizer", f"{kind}:{files[kind]}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for name in ("CRNN", "ASTER", "MORAN"):
        assert f"word accuracy (%), read by {name}" in printed
    assert "| method  | CRNN E |" in printed and printed.count("PSNR (dB)") == 1
    assert (out / "results.tex").read_text().count(r"\multicolumn{4}{c}") == 5   # 3 judges + PSNR + SSIM
    assert {p.name for p in out.glob("pictures_*.png")} == {"pictures_easy.png", "pictures_medium.png",
                                                              "pictures_hard.png"}


def test_validation_reads_with_eval_recognizer_kind_path(files):
    from tsr.config import load_config
    from tsr.engine.validation import Validator
    from tsr.models.build import build_model

    cfg = load_config(overrides=["model.parts=[sr,head]", f"eval.recognizer=moran:{files['moran']}"])
    validator = Validator(cfg, {}, torch.device("cpu"))
    read = validator._recognizer(build_model(cfg))
    assert validator._judge.name == "MORAN" and len(read(torch.rand(2, 4, 32, 128))) == 2


def test_picture_grid_shows_each_judges_reading():
    from tsr.engine.pictures import picture_grid

    images = torch.rand(2, 3, 32, 128)
    one = picture_grid([("HR", images)], ["ab", "cd"], {"HR": ["ab", "x"]})
    three = picture_grid([("HR", images)], ["ab", "cd"], {"HR": {"CRNN": ["ab", "x"], "ASTER": ["ab", "cd"],
                                                                   "MORAN": ["", "cd"]}})
    assert three.size[0] == one.size[0] and three.size[1] == one.size[1] + 2 * 2 * 14   # 2 more text lines a row
