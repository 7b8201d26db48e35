"""The Python API (load / super_resolve / recognize) and the `tsr merge|convert|sr` commands."""
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tsr import api
from tsr.charset import ALPHABETS, CTCCodec
from tsr.checkpoint import read_checkpoint, save_checkpoint
from tsr.cli import main
from tsr.commands.sr import output_names
from tsr.config import build_config
from tsr.errors import CheckpointError, TsrError
from tsr.models.build import build_model
from tsr.models.crnn import CRNN
from tsr.models.wrapper import FullModel, Part
from tsr.perf import reference_tsrn as REF
from trainer_helpers import REPO

SMALL = ["model.sr.blocks=1", "model.sr.channels=16", "model.sr.stn=false", "model.recognizer.hidden=16"]


def small_checkpoint(path, *overrides, seed=0):
    cfg = build_config({}, [*SMALL, *overrides])
    torch.manual_seed(seed)
    model = build_model(cfg)
    save_checkpoint(path, model, cfg, step=3)
    return model, cfg


def textzoom_file(tmp_path):
    model = REF.randomize_(REF.RefTSRN(up=1, stn=True, srb=1, mask=True, hidden=8), seed=5).eval()
    path = tmp_path / "tsrn_textzoom.pth"
    torch.save({"state_dict_G": model.state_dict(), "info": {"arch": "tsrn"}}, path)
    return path, model


def crnn_file(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "crnn.pth"
    torch.save({f"module.{k}": v for k, v in CRNN(num_classes=37, hidden=16).state_dict().items()}, path)
    return path


# ---------------------------------------------------------------------------------------------- api


def test_load_super_resolve_and_recognize(tmp_path):
    original, _ = small_checkpoint(tmp_path / "full.pth")
    model, cfg = api.load(tmp_path / "full.pth")
    assert not model.training and list(model.keys()) == ["sr", "head", "recognizer"]
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), model.state_dict().values()))
    lr = torch.rand(3, 4, 16, 64)
    model.train()
    sr = api.super_resolve(model, lr)
    assert model.training                                 # the caller's mode comes back
    assert sr.shape == (3, 4, 32, 128) and sr.min() >= 0 and sr.max() <= 1
    assert torch.equal(sr, api.super_resolve(model, lr))  # eval mode: deterministic (no batch statistics)
    words = api.recognize(model, sr, cfg)
    assert len(words) == 3 and all(isinstance(w, str) and set(w) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
                                   for w in words)


def test_load_public_checkpoints_matches_textzoom_output(tmp_path):
    path, reference = textzoom_file(tmp_path)
    model, cfg = api.load(path)
    assert cfg["model"]["sr"]["stn"] is True and cfg["data"]["mask"] is True
    lr = torch.rand(2, 4, 16, 64)
    with torch.no_grad():
        expected = reference(lr).clamp(0, 1)
    assert (api.super_resolve(model, lr) - expected).abs().max() < 1e-5
    recognizer, rec_cfg = api.load(crnn_file(tmp_path))
    assert list(recognizer.keys()) == ["recognizer"] and len(api.recognize(recognizer, lr, rec_cfg)) == 2
    with pytest.raises(TsrError, match=r"no 'sr' part \(parts: \['recognizer'\]\)"):
        api.super_resolve(recognizer, lr)


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        api.load(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"format": "tsr", "version": 1, "config": build_config({}, SMALL),
                "model": {"sr.net.block1.0.weight": torch.zeros(1)}}, bad)
    with pytest.raises(CheckpointError, match="strict load refused"):
        api.load(bad)


# ---------------------------------------------------------------------------------------------- commands


def test_convert_command(tmp_path, capsys):
    path, _ = textzoom_file(tmp_path)
    assert main(["convert", "--from", "textzoom-tsrn", str(path), "--out", str(tmp_path / "tsrn.pth")]) == 0
    converted = torch.load(tmp_path / "tsrn.pth", weights_only=True)
    assert converted["format"] == "tsr" and converted["converted_from"] == "textzoom-tsrn"
    assert "loaded" in capsys.readouterr().out
    crnn = crnn_file(tmp_path)
    assert main(["convert", "--from", "crnn-pytorch", str(crnn), "--out", str(tmp_path / "crnn_tsr.pth")]) == 0
    assert read_checkpoint(tmp_path / "crnn_tsr.pth")["config"]["model"]["parts"] == ["recognizer"]
    capsys.readouterr()
    assert main(["convert", "--from", "textzoom-tsrn", str(crnn), "--out", str(tmp_path / "x.pth")]) == 2
    assert "is a crnn-pytorch checkpoint; use --from crnn-pytorch" in capsys.readouterr().err
    assert not (tmp_path / "x.pth").exists()


def test_merge_command(tmp_path, capsys):
    small_checkpoint(tmp_path / "sr.pth", "model.parts=[sr, head]")
    crnn = crnn_file(tmp_path)
    out = tmp_path / "full.pth"
    assert main(["merge", "--sr", str(tmp_path / "sr.pth"), "--recognizer", str(crnn), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    model, cfg = api.load(out)
    counts = {part: len(model[part].state_dict()) for part in model}
    assert [line.split()[:2] for line in lines[:3]] == [[p, str(n)] for p, n in counts.items()]
    assert cfg["model"]["parts"] == ["sr", "head", "recognizer"]
    assert main(["merge", "--out", str(out)]) == 2


def write_png(path, size, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_sr_command_on_images_of_any_size(tmp_path, capsys):
    small_checkpoint(tmp_path / "full.pth")
    images = tmp_path / "images"
    images.mkdir()
    write_png(images / "small.png", (37, 11), 0)
    write_png(images / "wide.png", (300, 60), 1)
    Image.open(images / "small.png").convert("L").save(images / "grey.jpg")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(images), "--out", str(out),
                 "--batch-size", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "predictions.tsv", "small.png", "wide.png"]
    for name in ("grey.png", "small.png", "wide.png"):
        with Image.open(out / name) as image:
            assert image.size == (128, 32) and image.mode == "RGB"
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0] == "file\ttext" and [r.split("\t")[0] for r in rows[1:]] == ["grey.jpg", "small.png", "wide.png"]

    single = tmp_path / "single"
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(images / "wide.png"),
                 "--out", str(single)]) == 0
    assert (single / "wide.png").read_bytes() == (out / "wide.png").read_bytes()


def test_sr_command_errors(tmp_path, capsys):
    small_checkpoint(tmp_path / "full.pth")
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "out")]) == 2
    assert f"--input {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not really a png")
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert f"--input file {broken} is not an image PIL can read" in capsys.readouterr().err
    crnn = crnn_file(tmp_path)
    assert main(["sr", "--ckpt", str(crnn), "--input", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "has no SR network (parts: ['recognizer'])" in capsys.readouterr().err
    assert main(["sr", "--ckpt", str(tmp_path / "missing.pth"), "--input", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "missing.pth does not exist" in capsys.readouterr().err


def test_sr_gives_every_input_its_own_output(tmp_path, capsys):
    """Inputs a.jpg, a.png and a.jpg.png were written to a.jpg.png twice (one over the other) and a.png.png, while
    3 images were reported written."""
    small_checkpoint(tmp_path / "full.pth", "model.parts=[sr, head]")
    images = tmp_path / "images"
    images.mkdir()
    for seed, name in enumerate(["a.jpg", "a.png", "a.jpg.png"]):
        write_png(images / name, (40, 12), seed)
    out = tmp_path / "out"
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(images), "--out", str(out)]) == 0
    assert "3 SR images" in capsys.readouterr().out
    outputs = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(outputs) == ["a.jpg.png", "a.jpg.png.png", "a.png.png"] and len(set(outputs.values())) == 3
    single = tmp_path / "single"       # a.jpg.png's own output is the one named after it
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(images / "a.jpg.png"),
                 "--out", str(single)]) == 0
    assert (single / "a.jpg.png").read_bytes() == outputs["a.jpg.png.png"]
    # names that differ only in case would be one file on a case-insensitive file system
    assert output_names([Path("A.jpg"), Path("a.png"), Path("b.png")]) == ["A.jpg.png", "a.png.png", "b.png"]


def test_sr_and_read_write_awkward_file_names_faithfully(tmp_path, capsys):
    """One predictions.tsv writer for `tsr sr` and `tsr read`: a name with a tab or newline is quoted (tsr sr wrote
    it raw, breaking the file), and a Latin-1 name is written as its bytes on disk (both ended in a
    UnicodeEncodeError traceback after all the work)."""
    small_checkpoint(tmp_path / "full.pth")
    images = tmp_path / "images"
    images.mkdir()
    names = sorted(["plain.png", "tab\there.png", "new\nline.png", 'q"uote.png', os.fsdecode(b"caf\xe9.png")])
    for seed, name in enumerate(names):
        write_png(images / name, (40, 12), seed)

    def first_column(tsv):
        rows = list(csv.reader(io.StringIO(tsv.read_bytes().decode("utf-8", "surrogateescape"), newline=""),
                               delimiter="\t"))
        assert rows[0] == ["file", "text"] and all(len(row) == 2 for row in rows)
        return [row[0] for row in rows[1:]]

    out = tmp_path / "out"
    assert main(["sr", "--ckpt", str(tmp_path / "full.pth"), "--input", str(images), "--out", str(out)]) == 0
    assert first_column(out / "predictions.tsv") == names
    assert os.fsencode(names[0]) == b"caf\xe9.png" and (out / os.fsdecode(b"caf\xe9.png")).is_file()
    assert main(["read", "--recognizer", str(tmp_path / "full.pth"), "--input", str(images),
                 "--out", str(tmp_path / "read")]) == 0
    assert first_column(tmp_path / "read" / "predictions.tsv") == names
    # a UTF-8 locale other than C.UTF-8 gives Python a strict stdout, which refused to print a Latin-1 --out
    latin = os.fsdecode(b"sortie_\xe9")
    proc = subprocess.run([sys.executable, "-m", "tsr", "sr", "--ckpt", str(tmp_path / "full.pth"), "--input",
                           str(images / "plain.png"), "--out", str(tmp_path / latin)], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert os.fsencode(str(tmp_path / latin)) in proc.stdout and (tmp_path / latin / "plain.png").is_file()


def test_recognize_reads_class_from_logits_and_restores_mode():
    model = CRNN(37, hidden=16).train()
    with torch.no_grad():                          # the classifier ignores its input: class 'z' at every step
        model.rnn[1].embedding.weight.zero_()
        model.rnn[1].embedding.bias.zero_()
        model.rnn[1].embedding.bias[CTCCodec(ALPHABETS["lower"]).index["z"]] = 1.0
    full = FullModel({"recognizer": Part("recognizer", model)})
    assert api.recognize(full, torch.rand(2, 3, 32, 128), {"data": {"label_filter": "lower"}}) == ["z", "z"]
    assert model.training
    with pytest.raises(ValueError, match="codec has 95 classes"):
        api.recognize(full, torch.rand(1, 3, 32, 128), {"data": {"label_filter": "all"}})
