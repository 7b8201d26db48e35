"""TPS spatial transformer and its localisation network (the STN TextZoom's TSRN rectifies LR inputs with).

Module and buffer names follow TextZoom (which took them from ASTER), so `tps.*` and `stn_head.*` keys of a
TextZoom checkpoint load as they are. Control points are (x, y) in [0, 1] image coordinates.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def tps_radial_basis(points: torch.Tensor, control_points: torch.Tensor) -> torch.Tensor:
    """U(r) = r^2 log r between every point and every control point.

    points [N, 2], control_points [M, 2] -> [N, M]. Written as 0.5 * d * log(d) with d = r^2; U(0) = 0.
    """
    squared_dist = (points[:, None, :] - control_points[None, :, :]).pow(2).sum(dim=-1)
    # 0 * log(0) is nan; the limit is 0.
    return torch.where(squared_dist > 0, 0.5 * squared_dist * torch.log(squared_dist), torch.zeros_like(squared_dist))


def edge_control_points(num_control_points: int, margin_x: float, margin_y: float) -> torch.Tensor:
    """Half of the points evenly along the top edge, half along the bottom, inset by the margins -> [N, 2] (x, y)."""
    if num_control_points < 4 or num_control_points % 2:
        raise ValueError(f"num_control_points must be an even number >= 4, got {num_control_points}")
    per_side = num_control_points // 2
    xs = torch.linspace(margin_x, 1.0 - margin_x, per_side, dtype=torch.float64)
    top = torch.stack([xs, torch.full_like(xs, margin_y)], dim=1)
    bottom = torch.stack([xs, torch.full_like(xs, 1.0 - margin_y)], dim=1)
    return torch.cat([top, bottom], dim=0)


class TPSSpatialTransformer(nn.Module):
    """Warps an image so that the predicted source control points land on fixed target control points.

    Buffers (saved in the state dict, as in TextZoom): inverse_kernel [N+3, N+3], padding_matrix [3, 2],
    target_coordinate_repr [h*w, N+3], target_control_points [N, 2].
    """

    def __init__(self, output_size: tuple[int, int], num_control_points: int = 20,
                 margins: tuple[float, float] = (0.05, 0.05), align_corners: bool = False):
        """`align_corners`: how grid_sample reads the grid. TSRN (trained under torch >= 1.3) reads with False;
        ASTER's weights were trained under torch < 1.3, whose grid_sample aligned corners (True)."""
        super().__init__()
        self.output_size = tuple(output_size)
        self.align_corners = align_corners
        self.num_control_points = num_control_points
        height, width = self.output_size
        target = edge_control_points(num_control_points, *margins)  # float64 for an accurate inverse
        n = num_control_points

        # The TPS system [[K, 1, P], [1^T, 0, 0], [P^T, 0, 0]]; its inverse maps control points to coefficients.
        kernel = torch.zeros(n + 3, n + 3, dtype=torch.float64)
        kernel[:n, :n] = tps_radial_basis(target, target)
        kernel[:n, n] = 1.0
        kernel[n, :n] = 1.0
        kernel[:n, n + 1:] = target
        kernel[n + 1:, :n] = target.T

        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                                indexing="ij")
        grid = torch.stack([xs.reshape(-1) / (width - 1), ys.reshape(-1) / (height - 1)], dim=1)  # [h*w, 2] (x, y)
        coordinate_repr = torch.cat([tps_radial_basis(grid, target), torch.ones(height * width, 1, dtype=torch.float64),
                                     grid], dim=1)

        self.register_buffer("inverse_kernel", torch.linalg.inv(kernel).float())
        self.register_buffer("padding_matrix", torch.zeros(3, 2))
        self.register_buffer("target_coordinate_repr", coordinate_repr.float())
        self.register_buffer("target_control_points", target.float())

    def forward(self, image: torch.Tensor, source_control_points: torch.Tensor) -> torch.Tensor:
        """image [B, C, H, W], source_control_points [B, N, 2] (x, y in [0, 1]) -> rectified [B, C, h, w]."""
        batch, n = source_control_points.shape[0], self.num_control_points
        if source_control_points.shape[1:] != (n, 2):
            raise ValueError(f"source_control_points must be [B, {n}, 2], got {list(source_control_points.shape)}")
        height, width = self.output_size
        # Under AMP these matmuls would run in float16, which mixes r^2 log r terms with [0, 1] coordinates
        # too coarsely for sub-pixel sampling; the grid is computed in float32.
        with torch.autocast(device_type=image.device.type, enabled=False):
            rhs = torch.cat([source_control_points.float(), self.padding_matrix.expand(batch, 3, 2)], dim=1)
            mapping = torch.matmul(self.inverse_kernel, rhs)                    # [B, N+3, 2]
            source = torch.matmul(self.target_coordinate_repr, mapping)         # [B, h*w, 2]
            grid = source.view(batch, height, width, 2).clamp(0, 1) * 2.0 - 1.0  # grid_sample wants [-1, 1]
        # align_corners=False is grid_sample's default since torch 1.3, the version TextZoom pins for TSRN.
        return F.grid_sample(image, grid.to(image.dtype), align_corners=self.align_corners)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


class STNHead(nn.Module):
    """Localisation network: image [B, C, 32, 64] -> source control points [B, N, 2].

    Five 2x2 max-pools take 32x64 to 1x2, so the flattened features are 2 * 256 = 512; callers resize the
    input to 32x64 first. The last layer starts at zero weight with a bias that places the points near the
    image edges, so an untrained STN is close to the identity warp.
    """

    input_size = (32, 64)

    def __init__(self, in_channels: int, num_control_points: int = 20, init_margin: float = 0.01):
        super().__init__()
        self.num_control_points = num_control_points
        widths = [in_channels, 32, 64, 128, 256, 256, 256]
        layers: list[nn.Module] = []
        for i in range(6):
            if i:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            layers.append(_conv_bn_relu(widths[i], widths[i + 1]))
        self.stn_convnet = nn.Sequential(*layers)    # indices 0, 2, .., 10 are conv blocks, as TextZoom's
        self.stn_fc1 = nn.Sequential(nn.Linear(2 * 256, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.stn_fc2 = nn.Linear(512, num_control_points * 2)
        self._init_weights(init_margin)

    def _init_weights(self, init_margin: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.stn_fc2.weight.zero_()
            start = edge_control_points(self.num_control_points, init_margin, init_margin)
            self.stn_fc2.bias.copy_(start.reshape(-1).float())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image [B, C, 32, 64] -> control points [B, N, 2] (x, y, nominally in [0, 1])."""
        features = self.stn_convnet(image).flatten(1)       # [B, 256 * 1 * 2]
        if features.shape[1] != 512:
            raise ValueError(f"STNHead expects {self.input_size[0]}x{self.input_size[1]} inputs, "
                             f"got {image.shape[-2]}x{image.shape[-1]}")
        hidden = self.stn_fc1(features)
        # TextZoom scales the features by 0.1 before the last layer (keeps early warps small).
        return self.stn_fc2(0.1 * hidden).view(-1, self.num_control_points, 2)
