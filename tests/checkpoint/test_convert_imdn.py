"""`tsr convert --from imdn`: the official IMDN layout (Zheng222/IMDN `IMDN_x2.pth`) -> a tsr checkpoint that
computes what the official network computes (checked against a functional forward written from that layout)."""
import torch
import torch.nn.functional as F

from tsr import api
from tsr.cli import main as tsr_main


def official_state(channels=16, blocks=2, in_channels=3, scale=2, seed=0):
    """Random tensors under IMDN's official keys and shapes (IMDN(in_nc, nf, num_modules, out_nc, upscale))."""
    g = torch.Generator().manual_seed(seed)
    d, r = channels // 4, channels - channels // 4
    shapes = {"fea_conv": (channels, in_channels, 3), "c.0": (channels, channels * blocks, 1),
              "LR_conv": (channels, channels, 3), "upsampler.0": (in_channels * scale ** 2, channels, 3)}
    for i in range(1, blocks + 1):
        shapes.update({f"IMDB{i}.c1": (channels, channels, 3), f"IMDB{i}.c2": (channels, r, 3),
                       f"IMDB{i}.c3": (channels, r, 3), f"IMDB{i}.c4": (d, r, 3), f"IMDB{i}.c5": (channels, 4 * d, 1),
                       f"IMDB{i}.cca.conv_du.0": (4 * d // 16 or 1, 4 * d, 1),
                       f"IMDB{i}.cca.conv_du.2": (4 * d, 4 * d // 16 or 1, 1)})
    state = {}
    for name, (out_c, in_c, k) in shapes.items():
        state[f"module.{name}.weight"] = 0.1 * torch.randn(out_c, in_c, k, k, generator=g)
        state[f"module.{name}.bias"] = 0.01 * torch.randn(out_c, generator=g)
    return state


def official_forward(state, x, blocks, scale):
    """IMDN.forward of the official code, written from its layout with F.conv2d."""
    s = {k[len("module."):]: v for k, v in state.items()}

    def conv(name, t):
        w = s[f"{name}.weight"]
        return F.conv2d(t, w, s[f"{name}.bias"], padding=w.shape[-1] // 2)

    def lrelu(t):
        return F.leaky_relu(t, 0.05)

    fea = conv("fea_conv", x)
    outs, h = [], fea
    for i in range(1, blocks + 1):
        p = f"IMDB{i}"
        d = s[f"{p}.c4.weight"].shape[0]
        d1, r1 = torch.split(lrelu(conv(f"{p}.c1", h)), (d, h.shape[1] - d), 1)
        d2, r2 = torch.split(lrelu(conv(f"{p}.c2", r1)), (d, h.shape[1] - d), 1)
        d3, r3 = torch.split(lrelu(conv(f"{p}.c3", r2)), (d, h.shape[1] - d), 1)
        out = torch.cat([d1, d2, d3, conv(f"{p}.c4", r3)], 1)
        mean = out.mean((2, 3), keepdim=True)
        std = (out - mean).pow(2).mean((2, 3), keepdim=True).pow(0.5)
        y = torch.sigmoid(conv(f"{p}.cca.conv_du.2", F.relu(conv(f"{p}.cca.conv_du.0", std + mean))))
        h = conv(f"{p}.c5", out * y) + h
        outs.append(h)
    out_lr = conv("LR_conv", lrelu(conv("c.0", torch.cat(outs, 1)))) + fea
    return F.pixel_shuffle(conv("upsampler.0", out_lr), scale)


def test_convert_imdn_official_layout_gives_the_official_output(tmp_path, capsys):
    state = official_state(channels=16, blocks=2)
    torch.save(state, tmp_path / "IMDN_x2.pth")
    assert tsr_main(["convert", "--from", "imdn", str(tmp_path / "IMDN_x2.pth"), "--out", str(tmp_path / "t.pth")]) == 0
    model, cfg = api.load(tmp_path / "t.pth")
    assert (cfg["model"]["sr"]["type"], cfg["model"]["sr"]["channels"], cfg["model"]["sr"]["blocks"]) == ("imdn", 16, 2)
    assert (cfg["model"]["head"]["type"], cfg["model"]["head"]["stages"], cfg["data"]["mask"]) == ("shuffle", 1, False)
    lr = torch.rand(2, 3, 16, 64)
    expected = official_forward(state, lr, blocks=2, scale=2).clamp(0, 1)
    assert torch.allclose(api.super_resolve(model, lr), expected, atol=1e-5)


def test_convert_imdn_refuses_other_layouts(tmp_path, capsys):
    state = official_state(channels=16, blocks=1)
    del state["module.LR_conv.weight"]
    torch.save(state, tmp_path / "bad.pth")
    assert tsr_main(["convert", "--from", "imdn", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "LR_conv.weight" in capsys.readouterr().err
    torch.save(official_state(channels=16, blocks=1, scale=3), tmp_path / "x3.pth")
    assert tsr_main(["convert", "--from", "imdn", str(tmp_path / "x3.pth"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "x3" in capsys.readouterr().err
