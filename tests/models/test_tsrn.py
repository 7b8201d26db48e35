import itertools
from pathlib import Path

import pytest
import torch

from tsr.config import ConfigError
from tsr.models.heads import PixelShuffleHead, check_scale
from tsr.models.tps_stn import STNHead, TPSSpatialTransformer
from tsr.models.tsrn import TSRNBackbone
from tsr.perf import reference_tsrn as REF

LAYOUTS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "checkpoint-layouts.md"


def n_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize("stn, in_channels, expected", [(True, 4, 2_681_677), (False, 4, 826_629), (False, 3, 816_260)])
def test_parameter_counts_match_textzoom(stn, in_channels, expected):
    backbone = TSRNBackbone(in_channels=in_channels, stn=stn)
    head = PixelShuffleHead(channels=64, out_channels=in_channels, stages=1)
    assert n_params(backbone, head) == expected


def parse_layout_table(text, section):
    """Rows of the markdown table under '## {section}...' -> {key: (shape tuple, dtype)}."""
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.startswith(f"## {section}")
            continue
        if inside and line.startswith("| ") and not line.startswith("| key"):
            key, shape, dtype = [cell.strip() for cell in line.strip("|").split("|")]
            rows[key] = (tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype)
    return rows


def test_reference_model_matches_published_layout():
    if not LAYOUTS.is_file():
        pytest.skip(f"layout reference {LAYOUTS} is not on this machine")
    table = parse_layout_table(LAYOUTS.read_text(), "tsrn_stn_mask")
    assert len(table) == 239
    ref = REF.RefTSRN(up=1, stn=True, srb=5, mask=True)
    got = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in ref.state_dict().items()}
    assert got == table
    assert n_params(ref) == 2_681_677


def test_reference_variants_without_stn():
    with_mask, no_mask = REF.RefTSRN(stn=False, mask=True), REF.RefTSRN(stn=False, mask=False)
    assert (len(with_mask.state_dict()), n_params(with_mask)) == (184, 826_629)
    assert n_params(no_mask) == 816_260
    assert no_mask.state_dict()["block1.0.weight"].shape == (64, 3, 9, 9)
    assert no_mask.state_dict()["block8.1.weight"].shape == (3, 64, 9, 9)


def test_backbone_keys_are_textzoom_keys():
    ref_keys = set(REF.RefTSRN(stn=True).state_dict())
    backbone_keys = set(TSRNBackbone(stn=True).state_dict())
    assert backbone_keys <= ref_keys
    assert ref_keys - backbone_keys == {k for k in ref_keys if k.startswith("block8.")}
    assert set(PixelShuffleHead(stages=2).state_dict()) == {
        "upsample.0.conv.weight", "upsample.0.conv.bias", "upsample.1.conv.weight", "upsample.1.conv.bias",
        "conv_out.weight", "conv_out.bias"}


@pytest.mark.parametrize("mask, stn, blocks, channels, stages",
                         list(itertools.product([True, False], [True, False], [1, 5], [32, 64], [1, 2])))
def test_output_shapes_for_every_option(mask, stn, blocks, channels, stages):
    in_channels = 4 if mask else 3
    backbone = TSRNBackbone(in_channels=in_channels, channels=channels, blocks=blocks, stn=stn).eval()
    head = PixelShuffleHead(channels=channels, out_channels=in_channels, stages=stages).eval()
    with torch.no_grad():
        features = backbone(torch.rand(2, in_channels, 16, 64))
        image = head(features)
    assert features.shape == (2, channels, 16, 64)
    assert image.shape == (2, in_channels, 16 * 2 ** stages, 64 * 2 ** stages)
    assert image.abs().max() < 1.0  # tanh output


def test_training_mode_rectifies_and_trains_the_stn():
    torch.manual_seed(0)
    backbone, head = TSRNBackbone(stn=True).train(), PixelShuffleHead().train()
    lr = torch.rand(2, 4, 16, 64)
    out = head(backbone(lr))
    assert out.shape == (2, 4, 32, 128)
    out.square().mean().backward()
    # The localisation net only receives gradient when the STN is in the forward path.
    assert backbone.stn_head.stn_fc2.weight.grad.abs().sum() > 0
    backbone.eval()
    with torch.no_grad():
        skipped = backbone(lr)
        backbone.stn = False
        plain = backbone(lr)
    assert torch.equal(skipped, plain)  # eval mode skips rectification


def test_training_mode_rejects_input_of_another_size():
    backbone = TSRNBackbone(stn=True, lr_size=(16, 64)).train()
    with pytest.raises(ValueError, match=r"lr_size=\(16, 64\).*20x80"):
        backbone(torch.rand(2, 4, 20, 80))


def test_tps_buffers_match_reference_and_interpolate_control_points():
    tps = TPSSpatialTransformer((16, 64), 20, (0.05, 0.05))
    ref = REF.RefTPS((16, 64))
    for name in ("padding_matrix", "target_coordinate_repr", "target_control_points"):
        assert torch.allclose(getattr(tps, name), getattr(ref, name), atol=1e-6), name
    # The reference inverts in float32 (as TextZoom does); tsr inverts in float64 (entries up to ~90).
    assert torch.allclose(tps.inverse_kernel, ref.inverse_kernel, rtol=1e-4, atol=2e-3)
    # A TPS maps the target control points onto the source ones: with source == target it is the identity,
    # so the sampling coordinates equal the normalised pixel grid.
    rhs = torch.cat([tps.target_control_points, tps.padding_matrix])
    coords = tps.target_coordinate_repr @ (tps.inverse_kernel @ rhs)
    ys, xs = torch.meshgrid(torch.arange(16.0) / 15, torch.arange(64.0) / 63, indexing="ij")
    assert torch.allclose(coords, torch.stack([xs.flatten(), ys.flatten()], 1), atol=1e-5)


def test_stn_head_starts_at_edge_points_and_checks_input_size():
    head = STNHead(in_channels=4).eval()
    points = head(torch.rand(2, 4, 32, 64))
    assert points.shape == (2, 20, 2)
    assert torch.allclose(points[0, :10, 1], torch.full((10,), 0.01))   # top edge
    assert torch.allclose(points[0, 10:, 1], torch.full((10,), 0.99))   # bottom edge
    with pytest.raises(ValueError, match="32x64"):
        head(torch.rand(2, 4, 64, 64))


def test_check_scale():
    check_scale(1, (16, 64), (32, 128))
    check_scale(2, (16, 64), (64, 256))
    with pytest.raises(ConfigError, match=r"model.head.stages=2 upsamples x4, but data.lr_\* \(16x64\) -> "
                                          r"data.hr_\* \(32x128\) is x2"):
        check_scale(2, (16, 64), (32, 128))
    with pytest.raises(ConfigError, match=r"x2 in height and x4 in width"):
        check_scale(1, (16, 64), (32, 256))


def test_bicubic_skip_head_starts_at_bicubic_and_learns_a_correction():
    head = PixelShuffleHead(channels=8, out_channels=4, stages=1, bicubic_skip=True)
    features, lr = torch.randn(2, 8, 16, 64), torch.rand(2, 4, 16, 64)
    bicubic = torch.nn.functional.interpolate(lr, size=(32, 128), mode="bicubic", align_corners=False)
    assert torch.equal(head(features, lr), bicubic)          # zero-initialised correction
    with torch.no_grad():
        head.conv_out.bias.fill_(0.1)
    assert torch.allclose(head(features, lr) - bicubic, torch.full_like(bicubic, torch.tanh(torch.tensor(0.1)).item()))
    with pytest.raises(ValueError, match="needs the LR input with 4 channels"):
        head(features)
    plain = PixelShuffleHead(channels=8, out_channels=4, stages=1)
    assert plain(features, lr).abs().max() < 1                # TSRN's head: tanh only, LR ignored
