from pathlib import Path

import pytest
import torch

from tsr.errors import CheckpointError
from tsr.models.heads import PixelShuffleHead
from tsr.checkpoint.public import (crnn_pytorch_to_part, detect_public_format, infer_textzoom_tsrn_options,
                                  textzoom_tsrn_to_parts)
from tsr.models.tsrn import TSRNBackbone
from tsr.perf import reference_tsrn as REF


def saved_and_reloaded(tmp_path, state_dict_G):
    """Write a TextZoom-style checkpoint and read it back the way tsr will (weights_only)."""
    path = tmp_path / "model_best.pth"
    torch.save({"state_dict_G": state_dict_G, "info": {"arch": "tsrn", "iters": 10}, "best_history_res": {},
                "best_model_info": {}, "param_num": 1, "converge": []}, path)
    return torch.load(path, weights_only=True)


def build_parts(options):
    backbone = TSRNBackbone(in_channels=options["in_channels"], channels=options["channels"],
                            blocks=options["blocks"], stn=options["stn"])
    head = PixelShuffleHead(options["channels"], options["out_channels"], options["stages"])
    return backbone, head


@pytest.mark.parametrize("stn, mask", [(True, True), (False, True), (False, False)])
def test_mapped_textzoom_weights_reproduce_textzoom_outputs(tmp_path, stn, mask):
    ref = REF.randomize_(REF.RefTSRN(up=1, stn=stn, srb=5, mask=mask), seed=1).eval()
    checkpoint = saved_and_reloaded(tmp_path, ref.state_dict())
    options = infer_textzoom_tsrn_options(checkpoint["state_dict_G"])
    assert options == {"in_channels": 4 if mask else 3, "channels": 64, "blocks": 5, "stn": stn, "stages": 1,
                       "out_channels": 4 if mask else 3}
    parts = textzoom_tsrn_to_parts(checkpoint["state_dict_G"])
    backbone, head = build_parts(options)
    backbone.load_state_dict(parts["sr"], strict=True)
    head.load_state_dict(parts["head"], strict=True)
    backbone.eval(), head.eval()
    lr = torch.rand(2, options["in_channels"], 16, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        expected, got = ref(lr), head(backbone(lr))
    assert got.shape == (2, options["in_channels"], 32, 128)
    assert expected.std() > 0.05           # random BN stats and weights give a non-trivial output
    assert (got - expected).abs().max() < 1e-5


def test_training_mode_with_stn_matches_reference(tmp_path):
    ref = REF.randomize_(REF.RefTSRN(stn=True), seed=3)
    parts = textzoom_tsrn_to_parts(saved_and_reloaded(tmp_path, ref.state_dict()))  # whole checkpoint accepted
    backbone, head = TSRNBackbone(stn=True), PixelShuffleHead()
    backbone.load_state_dict(parts["sr"], strict=True)
    head.load_state_dict(parts["head"], strict=True)
    lr = torch.rand(2, 4, 16, 64, generator=torch.Generator().manual_seed(4))
    ref.train(), backbone.train(), head.train()
    with torch.no_grad():
        assert (head(backbone(lr)) - ref(lr)).abs().max() < 1e-4


@pytest.mark.parametrize("srb, up, stn", [(1, 1, False), (3, 2, True), (5, 2, False)])
def test_infer_options_and_conversion(srb, up, stn):
    ref = REF.RefTSRN(up=up, stn=stn, srb=srb, mask=True, hidden=16)
    sd = ref.state_dict()
    assert infer_textzoom_tsrn_options(sd) == {"in_channels": 4, "channels": 32, "blocks": srb, "stn": stn,
                                               "stages": up, "out_channels": 4}
    parts = textzoom_tsrn_to_parts(sd)
    backbone, head = build_parts(infer_textzoom_tsrn_options(sd))
    backbone.load_state_dict(parts["sr"], strict=True)
    head.load_state_dict(parts["head"], strict=True)
    assert "conv_out.weight" in parts["head"] and f"block{srb + 3}.{up}.weight" in sd


def test_module_prefix_is_stripped():
    sd = REF.RefTSRN(stn=False, srb=1).state_dict()
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    assert infer_textzoom_tsrn_options({"state_dict_G": prefixed})["blocks"] == 1
    plain, wrapped = textzoom_tsrn_to_parts(sd), textzoom_tsrn_to_parts({"state_dict_G": prefixed})
    assert plain["sr"].keys() == wrapped["sr"].keys() and plain["head"].keys() == wrapped["head"].keys()
    assert not any(k.startswith("module.") for k in wrapped["sr"])


def test_bad_tsrn_checkpoints_are_named():
    sd = REF.RefTSRN(stn=False, srb=1).state_dict()
    with pytest.raises(CheckpointError, match=r"weights.pth: keys that are not part of a TextZoom TSRN: \[extra.w\]"):
        textzoom_tsrn_to_parts({**sd, "extra.w": torch.zeros(1)}, source="weights.pth")
    with pytest.raises(CheckpointError, match=r"crnn.pth: expected a TextZoom TSRN state_dict_G.*cnn.conv0.weight"):
        infer_textzoom_tsrn_options({"cnn.conv0.weight": torch.zeros(1)}, source="crnn.pth")
    del sd["block2.conv1.weight"]
    with pytest.raises(CheckpointError, match="missing block2.conv1.weight"):
        infer_textzoom_tsrn_options(sd)
    with pytest.raises(CheckpointError, match="'state_dict_G' should be a state dict"):
        textzoom_tsrn_to_parts({"state_dict_G": [1, 2]})


def crnn_like_state():
    return {"cnn.conv0.weight": torch.zeros(64, 1, 3, 3), "cnn.conv0.bias": torch.zeros(64),
            "rnn.1.embedding.weight": torch.zeros(37, 512), "rnn.1.embedding.bias": torch.zeros(37)}


def test_crnn_pytorch_weights_keep_their_keys():
    sd = crnn_like_state()
    assert crnn_pytorch_to_part(sd) == sd
    mapped = crnn_pytorch_to_part({f"module.{k}": v for k, v in sd.items()})
    assert sorted(mapped) == sorted(sd)
    with pytest.raises(CheckpointError, match=r"tsrn.pth: expected a crnn.pytorch CRNN .*missing cnn.conv0.weight, "
                                              r"rnn.1.embedding.weight"):
        crnn_pytorch_to_part({"block1.0.weight": torch.zeros(1)}, source="tsrn.pth")


def test_detect_public_format():
    tsrn = REF.RefTSRN(stn=False, srb=1).state_dict()
    assert detect_public_format({"state_dict_G": tsrn, "info": {}}) == "textzoom-tsrn"
    assert detect_public_format({f"module.{k}": v for k, v in tsrn.items()}) == "textzoom-tsrn"
    assert detect_public_format(crnn_like_state()) == "crnn-pytorch"
    assert detect_public_format({f"module.{k}": v for k, v in crnn_like_state().items()}) == "crnn-pytorch"
    assert detect_public_format({"format": "tsr", "model": {}}) == "tsr"
    assert detect_public_format({"weight": torch.zeros(1)}) is None
    assert detect_public_format([1, 2]) is None
    # what the converters accept, detection accepts: nested DDP prefixes, torch.compile's _orig_mod., other keys
    for prefix in ("module.module.", "_orig_mod.", "module._orig_mod."):
        assert detect_public_format({f"{prefix}{k}": v for k, v in crnn_like_state().items()}) == "crnn-pytorch"
    assert detect_public_format({**crnn_like_state(), 7: torch.zeros(1)}) == "crnn-pytorch"


def test_values_that_are_not_the_expected_tensors_are_one_line_errors(tmp_path, capsys):
    tsrn = REF.RefTSRN(stn=False, srb=1).state_dict()
    with pytest.raises(CheckpointError, match=r"^w.pth: block1.0.weight should be a conv weight \[out, in, kh, kw\], "
                                              r"got int$"):
        infer_textzoom_tsrn_options({**tsrn, "block1.0.weight": 3}, source="w.pth")
    with pytest.raises(CheckpointError, match=r"block1.0.weight should be a conv weight .*got a tensor of shape \[\]"):
        infer_textzoom_tsrn_options({**tsrn, "block1.0.weight": torch.tensor(1.0)})
    with pytest.raises(CheckpointError, match=r"^state dict key 7 is not a string"):
        textzoom_tsrn_to_parts({**tsrn, 7: torch.zeros(1)})
    crnn = tmp_path / "crnn.pth"
    torch.save({**crnn_like_state(), "rnn.1.embedding.weight": 5}, crnn)
    from tsr.cli import main
    assert main(["convert", "--from", "crnn-pytorch", str(crnn), "--out", str(tmp_path / "c.pth")]) == 2
    assert capsys.readouterr().err.strip() == (f"tsr convert: error: {crnn}: crnn.pytorch state dict without the "
                                               "expected tensor 'rnn.1.embedding.weight' (found int [])")
    assert not (tmp_path / "c.pth").exists()
