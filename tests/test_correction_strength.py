"""eval/correction_strength.py: at strength 1 its row is the model's `tsr eval` row, at 0 the head's own bicubic
(the standard protocol's bicubic row), in between it moves; a head without the bicubic skip is refused."""
import importlib.util
import json

import pytest
import torch

from tsr.checkpoint import save_checkpoint
from tsr.cli import main as tsr_main
from tsr.data.synth import synthesize

from test_api_and_commands import small_checkpoint

spec = importlib.util.spec_from_file_location("correction_strength", "eval/correction_strength.py")
strength = importlib.util.module_from_spec(spec)
spec.loader.exec_module(strength)


def sr_checkpoint(path, *overrides):
    """An SR model whose correction of bicubic is not zero (the skip's last conv starts at zero)."""
    model, cfg = small_checkpoint(path, "model.parts=[sr,head]", *overrides)
    with torch.no_grad():
        for p in model["head"].net.conv_out.parameters():
            p.normal_(0, 0.05)
    save_checkpoint(path, model, cfg, step=3)


def rows_of(out_dir):
    results = json.loads((out_dir / "results.json").read_text())
    return {row["name"]: row["results"]["easy"] for row in results["rows"]}


def test_strength_one_is_the_models_row_and_zero_the_heads_bicubic(tmp_path):
    synthesize(tmp_path / "d", n_train=0, n_test=[6, 0, 0], seed=3, workers=1)
    sr_checkpoint(tmp_path / "sr.pth", "model.head.bicubic_skip=true")
    small_checkpoint(tmp_path / "judge.pth")
    data, judge = str(tmp_path / "d" / "test"), f"crnn:{tmp_path / 'judge.pth'}"
    assert strength.main(["--data", data, "--ckpt", str(tmp_path / "sr.pth"), "--recognizer", judge,
                          "--strengths", "0", "0.5", "1", "--out", str(tmp_path / "s"), "--splits", "easy"]) == 0
    assert tsr_main(["eval", "--data", data, "--splits", "easy", "--ckpt", f"{tmp_path / 'sr.pth'}:sr",
                     "--recognizer", judge, "--workers", "0", "--out", str(tmp_path / "e")]) == 0
    scaled, evaluated = rows_of(tmp_path / "s"), rows_of(tmp_path / "e")
    full, half, none = (scaled[f"bicubic + {a} x correction"] for a in ("1", "0.5", "0"))
    for key in ("psnr", "ssim", "psnr_standard", "judges"):
        assert full[key] == evaluated["sr"][key]
    assert none["psnr_standard"] == pytest.approx(evaluated["bicubic"]["psnr_standard"], abs=1e-9)
    assert none["psnr"] != full["psnr"] and half["psnr"] not in (none["psnr"], full["psnr"])


def test_a_head_without_the_bicubic_skip_is_refused(tmp_path, capsys):
    sr_checkpoint(tmp_path / "sr.pth")
    with pytest.raises(SystemExit):
        strength.main(["--data", str(tmp_path), "--ckpt", str(tmp_path / "sr.pth"), "--recognizer", "crnn:x"])
    assert "its head has no bicubic skip (model.head.bicubic_skip)" in capsys.readouterr().err
