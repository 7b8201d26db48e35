"""Checkpoints: atomic save, safe read, honest strict=False report, strict resume, public-format conversion on
read, merge of per-module checkpoints."""
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tsr.checkpoint import (group_keys, load_model_state, merge_checkpoints, read_checkpoint, save_checkpoint,
                            strip_prefixes, write_checkpoint)
from tsr.engine.rng import capture_rng_state, restore_rng_state
from tsr.config import build_config
from tsr.errors import CheckpointError
from tsr.models.build import build_model
from tsr.models.crnn import CRNN
from tsr.models.wrapper import FullModel, Part
from tsr.perf import reference_tsrn as REF


class TinySR(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)


class TinyRecognizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Linear(4, 5)


def tiny_model(channels=8, seed=0):
    torch.manual_seed(seed)
    return FullModel({"sr": Part("sr", TinySR(channels)), "recognizer": Part("recognizer", TinyRecognizer())})


SMALL = ["model.sr.blocks=1", "model.sr.channels=16", "model.sr.stn=false", "model.recognizer.hidden=16"]


def small_config(*overrides):
    return build_config({}, [*SMALL, *overrides])


def randomized(model, seed):
    """Random weights and BN statistics, so that equality checks cannot pass by initialisation alone."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=g))
    return model


# ---------------------------------------------------------------------------------------------- save / read


def test_save_and_read_round_trip_with_training_state(tmp_path):
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model["sr"].net.conv.weight.sum().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "last.pth", torch.compile(model, backend="eager"), {"run": {"seed": 3}},
                           step=7, metrics={"acc": 0.5}, optimizer=optimizer, rng=capture_rng_state())
    raw = torch.load(path, weights_only=True)            # loadable without unpickling any custom class
    assert raw["format"] == "tsr" and raw["version"] == 1 and raw["step"] == 7 and raw["metrics"] == {"acc": 0.5}
    assert list(raw["model"]) == list(model.state_dict())    # no `_orig_mod.` prefix from torch.compile
    checkpoint = read_checkpoint(path)
    assert checkpoint["config"] == {"run": {"seed": 3}}
    other = tiny_model(seed=1)
    report = load_model_state(other, checkpoint["model"], strict=True)
    assert report.clean and len(report.loaded) == len(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    resumed = torch.optim.AdamW(other.parameters(), lr=1e-3)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert resumed.state_dict()["state"][0]["step"] == 1


def test_rng_state_round_trip():
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_failed_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pth"
    save_checkpoint(path, tiny_model(), {}, step=1)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_model(seed=5), {}, step=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["best.pth"]


def test_numpy_values_are_saved_as_plain_numbers_and_tensors(tmp_path):
    metrics = {"ssim": np.float64(0.75), "count": np.int64(3), "per_split": np.array([0.5, 1.0])}
    save_checkpoint(tmp_path / "m.pth", tiny_model(), {}, step=0, metrics=metrics)
    saved = torch.load(tmp_path / "m.pth", weights_only=True)["metrics"]
    assert saved["ssim"] == 0.75 and type(saved["ssim"]) is float and type(saved["count"]) is int
    assert torch.equal(saved["per_split"], torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_save_refuses_what_weights_only_loading_would_refuse(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint\['trainer'\]\['extra'\] is a object"):
        save_checkpoint(tmp_path / "x.pth", tiny_model(), {}, step=0, trainer={"extra": object()})
    with pytest.raises(ValueError, match="unknown training state \\['optimiser'\\]"):
        save_checkpoint(tmp_path / "x.pth", tiny_model(), {}, step=0, optimiser={})
    assert not (tmp_path / "x.pth").exists()


class Custom:
    pass


def test_read_errors_name_the_file_and_what_was_expected(tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'nope.pth'} does not exist"):
        read_checkpoint(tmp_path / "nope.pth")
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError, match=f"{text}: not a PyTorch checkpoint"):
        read_checkpoint(text)
    unknown = tmp_path / "unknown.pth"
    torch.save({"weights": torch.zeros(1)}, unknown)
    with pytest.raises(CheckpointError, match=r"not a checkpoint layout tsr knows \(a dict with keys \[weights\]"):
        read_checkpoint(unknown)
    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict_G": {}, "obj": Custom()}, pickled)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_checkpoint(pickled)
    old_style = tmp_path / "old_style.pth"         # torch < 1.6's pickle layout: still a checkpoint file
    torch.save({"state_dict_G": {}, "obj": Custom()}, old_style, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_checkpoint(old_style)


def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path, capsys):
    """torch.load reads any non-zip file as a pickle, and its weights_only refusal of a PNG's first bytes used to
    be reported as a file holding Python objects tsr does not unpickle."""
    from PIL import Image

    from tsr.cli import main

    png = tmp_path / "word.png"
    Image.new("RGB", (64, 16), "white").save(png)
    jpeg = tmp_path / "word.jpg"
    Image.new("RGB", (64, 16), "white").save(jpeg)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    lmdb = tmp_path / "data.mdb"
    lmdb.write_bytes(bytes(64) + b"\xde\xc0\xef\xbe" + bytes(60))
    for path, what in ((png, "it is a PNG image"), (jpeg, "it is a JPEG image"), (empty, "it is empty"),
                       (lmdb, "it starts with the bytes 00 00 00 00 00 00 00 00")):
        with pytest.raises(CheckpointError) as error:
            read_checkpoint(path)
        assert str(error.value) == (f"{path}: not a PyTorch checkpoint file ({what}; torch.save writes a zip archive, "
                                    f"files of torch < 1.6 a pickle)")
    for command in (["show", str(png)], ["sr", "--ckpt", str(png), "--input", str(png), "--out", str(tmp_path / "o")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err == f"tsr {command[0]}: error: {png}: not a PyTorch checkpoint file (it is a PNG image; torch.save " \
                      f"writes a zip archive, files of torch < 1.6 a pickle)\n"
    future = tmp_path / "future.pth"
    torch.save({"format": "tsr", "version": 9, "model": {}, "config": {}}, future)
    with pytest.raises(CheckpointError, match="version 9; this tsr reads version 1"):
        read_checkpoint(future)


# ---------------------------------------------------------------------------------------------- load report


def test_strict_false_loads_what_matches_and_reports_the_rest_exactly():
    source = tiny_model(seed=1).state_dict()
    target = tiny_model(seed=2)
    untouched_bias = target["sr"].net.conv.bias.clone()
    state = {f"module.{k}": v for k, v in source.items() if k != "recognizer.net.embedding.bias"}
    state["module.sr.net.conv.bias"] = torch.zeros(3)             # model has 8 channels
    state["module.adapter.net.proj.weight"] = torch.zeros(2, 2)
    report = load_model_state(target, state, strict=False)
    assert report.missing == ["recognizer.net.embedding.bias"]
    assert report.unexpected == ["adapter.net.proj.weight"]
    assert report.wrong_shape == [("sr.net.conv.bias", (3,), (8,))]
    assert len(report.loaded) == len(source) - 2
    assert torch.equal(target["sr"].net.conv.weight, source["sr.net.conv.weight"])
    assert torch.equal(target["sr"].net.conv.bias, untouched_bias)
    text = str(report)
    assert "loaded 7/9 model tensors" in text
    assert "missing (left as initialised): recognizer.net.embedding.bias" in text
    assert "wrong shape (skipped): sr.net.conv.bias: checkpoint [3] vs model [8]" in text


def test_report_groups_long_key_lists_by_part():
    target = tiny_model()
    state = {k: v for k, v in target.state_dict().items() if k.startswith("recognizer.")}
    report = load_model_state(target, state)
    assert report.missing == [k for k in target.state_dict() if k.startswith("sr.")]
    assert "missing (left as initialised): sr.net.* (7 tensors)" in str(report)
    assert group_keys(["a.net.x.weight", "a.net.x.bias", "b.net.y"]) == "a.net.x.{weight, bias}; b.net.y"


def test_strict_true_raises_and_loads_nothing():
    target = tiny_model(seed=2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    state = dict(tiny_model(seed=1).state_dict())
    state["extra.net.w"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"strict load refused(.|\n)*unexpected \(ignored\): extra.net.w"):
        load_model_state(target, state, strict=True)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_strip_prefixes_handles_nesting_and_inner_compiled_parts():
    state = strip_prefixes({"module._orig_mod.sr.net.a": 1, "_orig_mod.module.head.net.b": 2,
                            "recognizer.net._orig_mod.c": 3})
    assert state == {"sr.net.a": 1, "head.net.b": 2, "recognizer.net.c": 3}
    with pytest.raises(CheckpointError, match="also means 'sr.net.a'"):
        strip_prefixes({"module.sr.net.a": 1, "sr.net.a": 2})


# ---------------------------------------------------------------------------------------------- public formats


def textzoom_file(tmp_path, mask=True, seed=3):
    ref = REF.randomize_(REF.RefTSRN(up=1, stn=False, srb=1, mask=mask, hidden=8), seed)
    path = tmp_path / "textzoom_tsrn.pth"
    torch.save({"state_dict_G": {f"module.{k}": v for k, v in ref.state_dict().items()}, "info": {"iters": 1}}, path)
    return path, ref


def crnn_file(tmp_path, num_classes=37, hidden=16, old_torch=True, seed=4):
    torch.manual_seed(seed)
    state = randomized(CRNN(num_classes=num_classes, hidden=hidden), seed).state_dict()
    if old_torch:   # crnn.pytorch's published crnn.pth predates num_batches_tracked
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / f"crnn_{num_classes}.pth"
    torch.save(state, path)
    return path, state


def test_textzoom_checkpoint_is_converted_on_read(tmp_path):
    path, ref = textzoom_file(tmp_path, mask=False)
    checkpoint = read_checkpoint(path)
    assert checkpoint["converted_from"] == "textzoom-tsrn"
    cfg = checkpoint["config"]
    assert cfg["model"]["parts"] == ["sr", "head"]
    assert cfg["model"]["sr"] == {"type": "tsrn", "blocks": 1, "channels": 16, "stn": False,
                                  "trainable": "all"}
    assert cfg["model"]["head"]["stages"] == 1 and cfg["data"]["mask"] is False
    model = build_model(cfg)
    assert load_model_state(model, checkpoint["model"], strict=True).clean
    assert torch.equal(model["head"].net.conv_out.weight, ref.state_dict()["block4.1.weight"])


def test_crnn_pytorch_checkpoint_is_converted_on_read(tmp_path):
    path, state = crnn_file(tmp_path)
    checkpoint = read_checkpoint(path)
    cfg = checkpoint["config"]
    assert cfg["model"]["parts"] == ["recognizer"]
    assert cfg["model"]["recognizer"]["hidden"] == 16 and cfg["data"]["label_filter"] == "lower"
    bn = "recognizer.net.cnn.batchnorm2.num_batches_tracked"
    assert checkpoint["model"][bn].item() == 0          # filled in for pre-0.4 checkpoints
    model = build_model(cfg)
    assert load_model_state(model, checkpoint["model"], strict=True).clean
    assert torch.equal(model["recognizer"].net.rnn[1].embedding.weight, state["rnn.1.embedding.weight"])
    all_path, _ = crnn_file(tmp_path, num_classes=95)
    assert read_checkpoint(all_path)["config"]["data"]["label_filter"] == "all"
    odd_path, _ = crnn_file(tmp_path, num_classes=40)
    with pytest.raises(CheckpointError, match="CRNN with 40 classes; tsr's alphabets give 37 \\(lower\\), 95 \\(all\\)"):
        read_checkpoint(odd_path)


def test_expected_format_mismatch_names_the_right_one(tmp_path):
    path, _ = crnn_file(tmp_path)
    with pytest.raises(CheckpointError, match="expected a textzoom-tsrn checkpoint, but it is a crnn-pytorch "
                                              "checkpoint; use --from crnn-pytorch"):
        read_checkpoint(path, expected_format="textzoom-tsrn")


# ---------------------------------------------------------------------------------------------- merge


def test_merge_round_trip_loads_strictly_and_keeps_the_sources_tensors(tmp_path):
    sr_cfg = small_config("model.parts=[sr, head]", "data.mask=false")
    sr_model = randomized(build_model(sr_cfg), 1)
    save_checkpoint(tmp_path / "sr.pth", sr_model, sr_cfg, step=10)
    rec_cfg = small_config("model.parts=[recognizer]", "data.label_filter=all", "model.recognizer.hidden=8")
    rec_model = randomized(build_model(rec_cfg), 2)
    save_checkpoint(tmp_path / "rec.pth", rec_model, rec_cfg, step=20)

    merged = merge_checkpoints(sr=tmp_path / "sr.pth", recognizer=tmp_path / "rec.pth")
    write_checkpoint(tmp_path / "full.pth", merged)
    checkpoint = read_checkpoint(tmp_path / "full.pth")
    cfg = build_config(checkpoint["config"])
    assert cfg["model"]["parts"] == ["sr", "head", "recognizer"]
    assert cfg["data"]["mask"] is False and cfg["data"]["label_filter"] == "all"
    assert cfg["model"]["recognizer"]["hidden"] == 8 and cfg["model"]["sr"]["channels"] == 16
    full = build_model(cfg)
    assert load_model_state(full, checkpoint["model"], strict=True).clean
    expected = {**sr_model.state_dict(), **rec_model.state_dict()}
    assert set(expected) == set(full.state_dict())
    assert all(torch.equal(full.state_dict()[k], v) for k, v in expected.items())


def test_merge_takes_only_the_named_part_from_a_full_checkpoint(tmp_path):
    full_cfg = small_config()
    save_checkpoint(tmp_path / "full.pth", build_model(full_cfg), full_cfg, step=1)
    crnn_path, state = crnn_file(tmp_path)
    merged = merge_checkpoints(sr=tmp_path / "full.pth", recognizer=crnn_path)
    assert merged["merged_from"] == {"sr": str(tmp_path / "full.pth"), "head": str(tmp_path / "full.pth"),
                                     "recognizer": str(crnn_path)}
    assert torch.equal(merged["model"]["recognizer.net.rnn.1.embedding.weight"], state["rnn.1.embedding.weight"])


def test_merge_errors(tmp_path):
    textzoom, _ = textzoom_file(tmp_path)
    with pytest.raises(CheckpointError, match=f"--recognizer {textzoom}: holds no 'recognizer' part"):
        merge_checkpoints(sr=textzoom, recognizer=textzoom)
    adapter_cfg = small_config("model.parts=[sr, head, recognizer, adapter]", "model.adapter.type=dense",
                               "model.sr.channels=32")
    save_checkpoint(tmp_path / "adapter.pth", build_model(adapter_cfg), adapter_cfg, step=1)
    crnn_path, _ = crnn_file(tmp_path)
    with pytest.raises(CheckpointError, match="model.sr.channels is 16 in .*textzoom_tsrn.pth \\(sr\\) but 32 in "
                                              ".*adapter.pth \\(adapter\\)"):
        merge_checkpoints(sr=textzoom, recognizer=crnn_path, adapter=tmp_path / "adapter.pth")
    # an adapter makes what the CNN of the recognizer it was trained with makes: of that CNN's widths
    narrow = ["model.recognizer.cnn_channels=[8,8,8,8,16,16,16]"]
    for kind in ("cnn", "dense"):
        cfg = small_config("model.parts=[sr, head, recognizer, adapter]", f"model.adapter.type={kind}", *narrow)
        save_checkpoint(tmp_path / f"{kind}.pth", build_model(cfg), cfg, step=1)
        with pytest.raises(CheckpointError, match=r"model.recognizer.cnn_channels is \[64, 128, 256, 256, 512, 512, "
                                                  r"512\] in .*crnn_37.pth \(recognizer\) but \[8, 8, 8, 8, 16, 16, "
                                                  rf"16\] in .*{kind}.pth \(adapter\)"):
            merge_checkpoints(sr=tmp_path / f"{kind}.pth", recognizer=crnn_path, adapter=tmp_path / f"{kind}.pth")
