"""tsr.data.blur: the generic degradation a reader trains on (train.rec_inputs: [hr, blurred])."""
import pytest
import torch

from tsr.data import blur


def test_one_pixel_checkerboard_area_downscaled_x2_is_flat_grey(monkeypatch):
    monkeypatch.setattr(blur, "FACTOR", (2.0, 2.0))
    monkeypatch.setattr(blur, "NOISE", (0.0, 0.0))
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(128), indexing="ij")
    board = ((rows + cols) % 2).float().expand(3, 4, 32, 128)
    out = blur.blurred(board)
    assert out.shape == (3, 4, 32, 128) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, 0.5))      # each 2x2 block averages to 0.5; bilinear keeps it


def test_noise_sigma_is_drawn_per_image_within_range_and_seeded(monkeypatch):
    monkeypatch.setattr(blur, "NOISE", (0.02, 0.03))
    grey = torch.full((6, 3, 32, 128), 0.5)                   # flat: the resize changes nothing, noise is all
    out = blur.blurred(grey, torch.Generator().manual_seed(1))
    sigmas = (out - 0.5).flatten(1).std(dim=1)
    assert ((sigmas > 0.018) & (sigmas < 0.032)).all() and sigmas.max() - sigmas.min() > 1e-3
    assert torch.equal(out, blur.blurred(grey, torch.Generator().manual_seed(1)))
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sharp_edge_is_softened_but_keeps_its_side(seed):
    edge = torch.zeros(1, 3, 32, 128)
    edge[..., 64:] = 1.0
    out = blur.blurred(edge, torch.Generator().manual_seed(seed))
    assert out[..., :, :56].mean() < 0.1 and out[..., :, 72:].mean() > 0.9
    assert 0.05 < out[0, 0, 16, 62:66].mean() < 0.95 and not torch.equal(out[..., 62:66], edge[..., 62:66])
