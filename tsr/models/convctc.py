"""ConvCTC: a recognizer of another family than CRNN, used to judge SR images independently of the training
recognizer: residual conv blocks (ResNet-style, BatchNorm) and a 1-D convolutional context over the
columns, then CTC. No LSTM, so it does not share CRNN's sequence model and its blind spots.

    images [B, C, H, W] in [0,1] -> grey, bicubic resize to input_size (32 x 128)
    -> a 3x3 conv stem (cnn_channels[0]) and a 2x2 max-pool (16 x 64)
    -> per entry of cnn_channels a residual block (two 3x3 convs + BN, 1x1 projection when the width changes),
       then a max-pool: block 0 halves height and width, blocks 1-3 the height only, later ones none
    -> mean over the remaining rows -> sequence [T = width / 4 = 32, B, cnn_channels[-1]]    (encode)
    -> 1x1 projection to `hidden`, two residual 1-D convs (kernel 3) over T, linear classifier (decode_sequence)
    -> logits [T, B, num_classes]
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tsr.models.crnn import GREY_WEIGHTS

# Pool after block i (the stem already halved both axes): both axes once more, then the height only, so the
# width stays for T. Full-resolution residual blocks would cost 4x more than CRNN's first layers.
_POOLS = ((2, 2), (2, 1), (2, 1), (2, 1))


class ResidualBlock(nn.Module):
    """[B, in, H, W] -> [B, out, H, W]: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (nn.Identity() if in_channels == out_channels else
                         nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ContextBlock(nn.Module):
    """[B, D, T] -> [B, D, T]: x + conv1d(relu(bn(conv1d(x)))), kernel 3 (each step sees 2 neighbours more)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, width, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.bn(self.conv1(x)))))


class ConvCTC(nn.Module):
    """Images [B, C, H, W] in [0,1] (C 1, 3 or 4; a mask channel is ignored) -> CTC logits [T, B, num_classes],
    T = input_size[1] // 4 (32 at 32 x 128). Same interface as CRNN (encode / decode_sequence), so the
    uniform wrapper, `tsr eval --recognizer` and validation use it unchanged."""

    # head_only: only the final classifier learns; sequence: everything after the CNN.
    TRAINABLE_SCOPES = {"head_only": ("classifier",), "sequence": ("project", "context", "classifier")}

    def __init__(self, num_classes: int = 37, hidden: int = 256, cnn_channels: Sequence[int] = (64, 128, 256, 256),
                 input_size: Sequence[int] = (32, 128)):
        super().__init__()
        input_size = tuple(input_size)
        if len(cnn_channels) < 2:
            raise ValueError(f"ConvCTC cnn_channels needs at least 2 blocks, got {list(cnn_channels)}")
        if len(input_size) != 2 or input_size[1] < 16 or input_size[0] < 4:
            raise ValueError(f"ConvCTC input_size must be (height >= 4, width >= 16), got {input_size}")
        self.num_classes = num_classes
        self.input_size = input_size
        self.sequence_dim = cnn_channels[-1]
        self.sequence_length = input_size[1] // 4
        self.cnn = nn.Sequential(nn.Conv2d(1, cnn_channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(cnn_channels[0]),
                                 nn.ReLU(inplace=True), nn.MaxPool2d(2, 2), *self._blocks(cnn_channels))
        self.project = nn.Conv1d(self.sequence_dim, hidden, 1)
        self.context = nn.Sequential(ContextBlock(hidden), ContextBlock(hidden))
        self.classifier = nn.Linear(hidden, num_classes)

    @staticmethod
    def _blocks(cnn_channels: Sequence[int]) -> list[nn.Module]:
        layers, channels = [], cnn_channels[0]
        for i, out_channels in enumerate(cnn_channels):
            layers.append(ResidualBlock(channels, out_channels))
            if i < len(_POOLS):
                layers.append(nn.MaxPool2d(_POOLS[i], _POOLS[i]))
            channels = out_channels
        return layers

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W], C in (1, 3, 4) -> grey [B, 1, *input_size] (differentiable; not normalised, as CRNN)."""
        if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            raise ValueError(f"ConvCTC expects images [B, C, H, W] with C in (1, 3, 4), got {tuple(images.shape)}")
        if images.shape[1] != 1:
            images = sum(w * images[:, i:i + 1] for i, w in enumerate(GREY_WEIGHTS))
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bicubic", align_corners=False)
        return images

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> the CNN's column sequence [T, B, sequence_dim] (rows averaged away)."""
        features = self.cnn(self.preprocess(images)).mean(dim=2)      # B x D x T
        return features.permute(2, 0, 1).contiguous()

    def decode_sequence(self, sequence: torch.Tensor) -> torch.Tensor:
        """Sequence [T, B, sequence_dim] -> logits [T, B, num_classes]."""
        if sequence.dim() != 3 or sequence.shape[-1] != self.sequence_dim:
            raise ValueError(f"ConvCTC.decode_sequence expects [T, B, {self.sequence_dim}], got {tuple(sequence.shape)}")
        x = self.context(self.project(sequence.permute(1, 2, 0)))    # B x hidden x T
        return self.classifier(x.permute(2, 0, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode_sequence(self.encode(images))
