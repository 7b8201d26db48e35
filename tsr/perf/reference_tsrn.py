"""A compact, independent re-implementation of TextZoom's TSRN in its ORIGINAL layout: the baseline of
eval/bench_reference_tsrn.py, and the model that tests compare tsr's TSRN and its converter with (not used in
training or inference).

Keys: block1 .. block{srb+3} (the last one is the upsampler), tps.*, stn_head.* -- the layout of a TextZoom
`state_dict_G`. Written from the architecture (not from tsr's modules) so that equivalence tests compare
two independent codings. Its forward follows TextZoom's data flow literally: the column GRU is a row GRU
applied to the H/W-transposed map.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _mish(x):
    return x * torch.tanh(F.softplus(x))


class RefGru(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1)
        self.gru = nn.GRU(c, c // 2, bidirectional=True, batch_first=True)

    def forward(self, x):  # GRU along the last axis, one sequence per (batch, row)
        x = self.conv1(x).permute(0, 2, 3, 1).contiguous()
        b, h, w, c = x.shape
        y, _ = self.gru(x.view(b * h, w, c))
        return y.view(b, h, w, c).permute(0, 3, 1, 2)


class RefSRB(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.gru1, self.gru2 = RefGru(c), RefGru(c)

    def forward(self, x):
        r = self.bn2(self.conv2(_mish(self.bn1(self.conv1(x)))))
        r = self.gru1(r.transpose(-1, -2)).transpose(-1, -2)
        return self.gru2(x + r)


class RefUpsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, 4 * c, 3, padding=1)

    def forward(self, x):
        return _mish(F.pixel_shuffle(self.conv(x), 2))


def _ctrl_points(n, mx, my):
    xs = np.linspace(mx, 1 - mx, n // 2)
    top = np.stack([xs, np.full(n // 2, my)], 1)
    bottom = np.stack([xs, np.full(n // 2, 1 - my)], 1)
    return torch.tensor(np.concatenate([top, bottom]), dtype=torch.float32)


def _u(p, q):
    d = ((p[:, None] - q[None]) ** 2).sum(-1)
    return torch.nan_to_num(0.5 * d * torch.log(d), nan=0.0)


class RefTPS(nn.Module):
    def __init__(self, out_hw, n=20, margins=(0.05, 0.05)):
        super().__init__()
        self.h, self.w, self.n = out_hw[0], out_hw[1], n
        t = _ctrl_points(n, *margins)
        k = torch.zeros(n + 3, n + 3)
        k[:n, :n] = _u(t, t)
        k[:n, -3] = 1
        k[-3, :n] = 1
        k[:n, -2:] = t
        k[-2:, :n] = t.t()
        yx = torch.tensor(list(itertools.product(range(self.h), range(self.w))), dtype=torch.float32)
        xy = torch.stack([yx[:, 1] / (self.w - 1), yx[:, 0] / (self.h - 1)], 1)
        self.register_buffer("inverse_kernel", torch.inverse(k))
        self.register_buffer("padding_matrix", torch.zeros(3, 2))
        self.register_buffer("target_coordinate_repr", torch.cat([_u(xy, t), torch.ones(len(xy), 1), xy], 1))
        self.register_buffer("target_control_points", t)

    def forward(self, x, src):
        y = torch.cat([src, self.padding_matrix.expand(src.shape[0], 3, 2)], 1)
        coords = self.target_coordinate_repr @ (self.inverse_kernel @ y)
        grid = coords.view(-1, self.h, self.w, 2).clamp(0, 1) * 2 - 1
        return F.grid_sample(x, grid, align_corners=False)


class RefSTNHead(nn.Module):
    def __init__(self, cin, n=20):
        super().__init__()
        self.n = n
        chans = [cin, 32, 64, 128, 256, 256, 256]
        layers = []
        for i in range(6):
            layers.append(nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                                        nn.BatchNorm2d(chans[i + 1]), nn.ReLU()))
            if i < 5:
                layers.append(nn.MaxPool2d(2))
        self.stn_convnet = nn.Sequential(*layers)
        self.stn_fc1 = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU())
        self.stn_fc2 = nn.Linear(512, 2 * n)
        with torch.no_grad():
            self.stn_fc2.weight.zero_()
            self.stn_fc2.bias.copy_(_ctrl_points(n, 0.01, 0.01).view(-1))

    def forward(self, x):
        f = self.stn_fc1(self.stn_convnet(x).view(x.shape[0], -1))
        return self.stn_fc2(0.1 * f).view(-1, self.n, 2)


class RefTSRN(nn.Module):
    """TextZoom TSRN(scale_factor=2**up, STN=stn, srb_nums=srb, mask=mask, hidden_units=hidden)."""

    def __init__(self, up=1, stn=True, srb=5, mask=True, hidden=32, lr_hw=(16, 64)):
        super().__init__()
        cin, c = (4 if mask else 3), 2 * hidden
        self.srb, self.stn = srb, stn
        self.block1 = nn.Sequential(nn.Conv2d(cin, c, 9, padding=4), nn.PReLU())
        for i in range(srb):
            setattr(self, f"block{i + 2}", RefSRB(c))
        setattr(self, f"block{srb + 2}", nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)))
        setattr(self, f"block{srb + 3}",
                nn.Sequential(*[RefUpsample(c) for _ in range(up)], nn.Conv2d(c, cin, 9, padding=4)))
        if stn:
            self.tps = RefTPS(lr_hw)
            self.stn_head = RefSTNHead(cin)

    def forward(self, x):
        if self.stn and self.training:
            x = F.interpolate(x, (32, 64), mode="bilinear", align_corners=True)
            x = self.tps(x, self.stn_head(x))
        outs = [self.block1(x)]
        for i in range(self.srb + 1):
            outs.append(getattr(self, f"block{i + 2}")(outs[-1]))
        return torch.tanh(getattr(self, f"block{self.srb + 3}")(outs[0] + outs[-1]))


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere and random BN running statistics (so eval-mode BN is not the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = max(1, p[0].numel()) if p.dim() > 1 else 16
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model
