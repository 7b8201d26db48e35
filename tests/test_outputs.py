"""Output paths are checked before work starts (read-only folders, a file where a folder goes and the reverse), and
`tsr sr` never writes over its inputs."""
import ctypes
import os
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from tsr.cli import main
from tsr.data.synth import synthesize
from tsr.errors import TsrError
from tsr.outputs import check_output_dir, check_output_file
from test_api_and_commands import small_checkpoint
from trainer_helpers import REPO, stage_config


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    synthesize(root / "d", n_train=8, n_test=2, seed=1, workers=1)
    small_checkpoint(root / "c.pth")
    (root / "images").mkdir()
    for name in ("a.png", "b.jpg"):
        Image.new("RGB", (50, 20), (200, 100, 50)).save(root / "images" / name)
    return root


def _without_root_powers():
    """Root passes every permission check (CAP_DAC_OVERRIDE); drop that capability from the bounding set before
    exec, so that a read-only folder is read-only for this child too. prctl(PR_CAPBSET_DROP=24, CAP_DAC_OVERRIDE=1)."""
    if os.geteuid() == 0:
        assert ctypes.CDLL(None, use_errno=True).prctl(24, 1, 0, 0, 0) == 0


def test_read_only_output_folders_are_one_line_errors(inputs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    d = inputs / "d"
    commands = {
        "synth": ["--out", ro / "s", "--train", "2", "--test", "1", "--workers", "1"],
        "eval": ["--data", d / "test", "--out", ro / "e", "--workers", "0"],
        "merge": ["--sr", inputs / "c.pth", "--out", ro / "m.pth"],
        "sr": ["--ckpt", inputs / "c.pth", "--input", inputs / "images", "--out", ro / "x"],
        "train": ["--config", stage_config("sr"), f"run.out_root={ro}", f"data.train_roots=[{d / 'train'}]",
                  f"data.test_root={d / 'test'}", "train.steps=1", "data.num_workers=0"],
    }
    for command, args in commands.items():
        proc = subprocess.run([sys.executable, "-m", "tsr", command, *map(str, args)], capture_output=True, text=True,
                              preexec_fn=_without_root_powers, cwd=REPO)
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Permission denied" in proc.stderr
    assert list(ro.iterdir()) == []


def test_out_that_is_a_file_or_a_folder_is_refused_before_any_work(inputs, tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    started = time.perf_counter()
    assert main(["eval", "--data", str(inputs / "d" / "test"), "--out", str(existing), "--ckpt",
                 str(inputs / "c.pth")]) == 2
    assert time.perf_counter() - started < 1.0                  # refused before loading or evaluating anything
    assert f"--out {existing} is a file; expected a folder" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    assert main(["merge", "--sr", str(inputs / "c.pth"), "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder; expected a file name" in capsys.readouterr().err
    with pytest.raises(TsrError, match=r"results.txt is a file, so no folder can be made there"):
        check_output_dir(existing / "sub", "--out")
    assert check_output_file(tmp_path / "new" / "m.pth", "--out") == tmp_path / "new" / "m.pth"
    assert not (tmp_path / "new").exists()                     # checking creates nothing


@pytest.mark.parametrize("command", ["merge", "convert", "quantize", "export"])
def test_an_out_file_that_is_an_input_is_refused_and_the_input_kept(command, inputs, tmp_path, capsys):
    """A command that reads checkpoints never writes its result over one of them (a merge written over a run's
    last.pth would lose its optimizer and step; an ONNX file over the checkpoint would lose the weights), whatever
    the spelling of the path: the same name, a relative one, a symbolic link."""
    ckpt = tmp_path / "run" / "last.pth"
    ckpt.parent.mkdir()
    ckpt.write_bytes((inputs / "c.pth").read_bytes())
    link = tmp_path / "link.pth"
    link.symlink_to(ckpt)
    before = ckpt.read_bytes()
    flag = {"merge": "--sr", "convert": "IN", "quantize": "--ckpt", "export": "--ckpt"}[command]
    for out in (ckpt, tmp_path / "run" / ".." / "run" / "last.pth", link):
        args = {"merge": ["--recognizer", str(inputs / "c.pth"), "--sr", str(ckpt)],
                "convert": ["--from", "textzoom-tsrn", str(ckpt)],
                "quantize": ["--ckpt", str(ckpt), "--mode", "ptq"],
                "export": ["--ckpt", str(ckpt)]}[command]
        assert main([command, *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"tsr {command}: error: --out {out} is the {flag} file: writing it would replace that input; " \
                      f"choose another --out"
    assert ckpt.read_bytes() == before and link.resolve() == ckpt


def test_sr_never_overwrites_its_inputs(inputs, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for file in (inputs / "images").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(folder), "--out", str(folder)]) == 2
    assert "is the --input folder" in capsys.readouterr().err
    assert main(["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(folder / "a.png"), "--out", str(folder)]) == 2
    assert "writing a.png would overwrite the input image" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # beside an input under a new name is fine: b.jpg -> b.png
    assert main(["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(folder / "b.jpg"), "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.jpg", "b.png", "predictions.tsv"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a torch without CUDA")
def test_sr_device_cuda_without_cuda_is_one_line(inputs, tmp_path, capsys):
    assert main(["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(inputs / "images"), "--out",
                 str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "--device is cuda, but this torch" in capsys.readouterr().err


def test_sr_and_read_replace_nothing_in_out_without_overwrite(inputs, tmp_path, capsys):
    """A user's own file named like an output was overwritten silently, and a second run into one --out with an
    SR-only checkpoint left the first run's predictions.tsv (another checkpoint's readings) beside its images.
    Such a --out is refused before any work; --overwrite replaces, and removes that predictions.tsv."""
    sr_only = tmp_path / "sr_only.pth"
    small_checkpoint(sr_only, "model.parts=[sr, head]", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_text("my own file")
    (out / "notes.txt").write_text("mine too")
    command = ["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(inputs / "images"), "--out", str(out)]
    assert main(command) == 2
    assert capsys.readouterr().err == f"tsr sr: error: --out {out} already holds a.png (names this run's output " \
                                      f"takes); pass --overwrite to replace them, or choose another --out\n"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "notes.txt"]
    assert (out / "a.png").read_text() == "my own file"
    assert main([*command, "--overwrite"]) == 0
    assert "2 SR images (32x128) written" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "notes.txt", "predictions.tsv"]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert first["a.png"].startswith(b"\x89PNG") and first["notes.txt"] == b"mine too"

    sr_only_command = ["sr", "--ckpt", str(sr_only), "--input", str(inputs / "images"), "--out", str(out)]
    assert main(sr_only_command) == 2
    assert "already holds a.png, b.png, predictions.tsv (names" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert main([*sr_only_command, "--overwrite"]) == 0
    assert f"removed {out / 'predictions.tsv'} of an earlier run" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "notes.txt"]
    assert (out / "a.png").read_bytes() != first["a.png"]           # the new checkpoint's image

    read = ["read", "--recognizer", str(inputs / "c.pth"), "--input", str(inputs / "images"), "--out", str(out)]
    (out / "predictions.tsv").write_text("my own readings")
    assert main(read) == 2
    assert "already holds predictions.tsv" in capsys.readouterr().err
    assert (out / "predictions.tsv").read_text() == "my own readings"
    assert main([*read, "--overwrite"]) == 0
    assert (out / "predictions.tsv").read_text().startswith("file\ttext\na.png\t")


def test_read_checks_out_before_reading(inputs, tmp_path, capsys, monkeypatch):
    """`tsr read --out <a file>` read every image, then failed with 'afile: File exists'."""
    import tsr.data.user_images

    afile = tmp_path / "afile"
    afile.write_text("keep me")
    monkeypatch.setattr(tsr.data.user_images, "open_rgb", lambda *a: pytest.fail("an image was read"))
    assert main(["read", "--recognizer", str(inputs / "c.pth"), "--input", str(inputs / "images"),
                 "--out", str(afile)]) == 2
    assert capsys.readouterr().err == f"tsr read: error: --out {afile} is a file; expected a folder (existing or new)\n"
    assert afile.read_text() == "keep me"


def test_sr_output_appears_whole_or_not_at_all(inputs, tmp_path, capsys, monkeypatch):
    """Outputs were written per batch: a damaged input in a later batch (or a stop) left the earlier batches'
    PNGs with no sign the run was incomplete. Every input is now read before any work, and the outputs are moved
    into --out only when the last one is done."""
    from tsr import api

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (50, 20), (200, 100, 50)).save(folder / name)
    (folder / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    calls = []
    real = api.super_resolve
    monkeypatch.setattr(api, "super_resolve", lambda *a: calls.append(1) or real(*a))
    out = tmp_path / "out"
    command = ["sr", "--ckpt", str(inputs / "c.pth"), "--input", str(folder), "--out", str(out), "--batch-size", "1"]
    assert main(command) == 2
    assert f"--input file {folder / 'd.png'} is not an image PIL can read" in capsys.readouterr().err
    assert calls == [] and not out.exists()

    (folder / "d.png").unlink()

    def stop_at_the_second_batch(*a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(api, "super_resolve", stop_at_the_second_batch)
    assert main(command) == 130
    assert not out.exists()                          # made by this run, and nothing in it: gone
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    calls.clear()
    assert main(command) == 130
    assert [p.name for p in out.iterdir()] == ["mine.txt"]      # no half of a run, no hidden staging folder
