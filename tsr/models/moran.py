"""MORAN (Luo et al. 2019) as TextZoom evaluates with it: MORAN_v2's MORAN(nc=1, nclass=37, nh=256, targetH=32,
targetW=100, BidirDecoder=True), an evaluation-only judge.

Module names are MORAN_v2's without DataParallel's `module.` (427 entries, 20,340,141 parameters): `MORN.cnn.*`
(the rectifier, tsr/models/morn.py), `ASRN.cnn.block0..5` (a ResNet), `ASRN.rnn.0/1` (BiLSTMs),
`ASRN.attentionL2R.*` and `ASRN.attentionR2L.*` (attention GRU decoders; TextZoom reads with the
left-to-right one, so the right-to-left one is loaded but never run).

Reading (`symbol_ids`, then `words`), as TextZoom's parse_moran_data + MORAN(test=True) + converter:
RGB [B, 3, H, W] in [0,1] -> bicubic to 32x100 -> grey 0.299R + 0.587G + 0.114B (values stay in [0,1], no
normalisation) -> MORN -> ASRN features [25, B, 256] -> 20 greedy decoding steps -> symbols of '0-9a-z$', cut at
the first '$'.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsr.models.crnn import GREY_WEIGHTS, BidirectionalLSTM
from tsr.models.morn import MORN

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz$"   # '$' ends a word
INPUT_SIZE = (32, 100)
STEPS = 20                                          # TextZoom decodes '0' * 20 placeholders: 20 steps


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2),
                         nn.BatchNorm2d(out_channels, momentum=0.01))


class ResidualBlock(nn.Module):
    """conv-BN, conv-BN (no activation between), plus the input (a strided 3x3 conv-BN when downsampling), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride):
        super().__init__()
        down = (stride[0] if isinstance(stride, tuple) else stride) > 1
        self.downsample = _conv_bn(in_channels, out_channels, 3, stride) if down else None
        self.conv1 = _conv_bn(in_channels, out_channels, 3 if down else 1, stride)
        self.conv2 = _conv_bn(out_channels, out_channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(residual + self.conv2(self.conv1(x)))


class ResNet(nn.Module):
    """[B, 1, 32, 100] -> [B, 512, 1, 25]."""

    BLOCKS = ((32, 2, 3), (64, 2, 4), (128, (2, 1), 6), (256, (2, 1), 6), (512, (2, 1), 3))  # (channels, stride, n)

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.block0 = _conv_bn(in_channels, 32, 3, 1)
        channels = 32
        for i, (out_channels, stride, repeat) in enumerate(self.BLOCKS, start=1):
            blocks = [ResidualBlock(channels, out_channels, stride)]
            blocks += [ResidualBlock(out_channels, out_channels, 1) for _ in range(repeat - 1)]
            self.add_module(f"block{i}", nn.Sequential(*blocks))
            channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(6):
            x = getattr(self, f"block{i}")(x)
        return x


class AttentionCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int):
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.GRUCell(input_size + num_embeddings, hidden_size)

    def forward(self, hidden: torch.Tensor, features: torch.Tensor, projected: torch.Tensor,
                embeddings: torch.Tensor) -> torch.Tensor:
        """hidden [B, H], features [T, B, C], projected = i2h(features) [T, B, H], embeddings [B, E] -> [B, H]."""
        alpha = F.softmax(self.score(torch.tanh(projected + self.h2h(hidden))).squeeze(2), dim=0)   # [T, B]
        context = (features * alpha.unsqueeze(2)).sum(0)
        return self.rnn(torch.cat([context, embeddings], dim=1), hidden)


class Attention(nn.Module):
    """Attention decoder; greedy at test time: symbol 0 of `char_embeddings` starts, class c feeds back as c+1."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, num_embeddings: int = 256):
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_embeddings)
        self.generator = nn.Linear(hidden_size, num_classes)
        self.char_embeddings = nn.Parameter(torch.randn(num_classes + 1, num_embeddings))

    def greedy(self, features: torch.Tensor, steps: int) -> torch.Tensor:
        """features [T, B, C] -> class ids [B, steps]."""
        batch = features.shape[1]
        hidden = features.new_zeros(batch, self.generator.in_features)
        projected = self.attention_cell.i2h(features)               # the same at every step: computed once
        previous = torch.zeros(batch, dtype=torch.long, device=features.device)
        out = []
        for _ in range(steps):
            hidden = self.attention_cell(hidden, features, projected, self.char_embeddings.index_select(0, previous))
            predicted = self.generator(hidden).argmax(1)
            out.append(predicted)
            previous = predicted + 1
        return torch.stack(out, dim=1)


class ASRN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = len(ALPHABET), hidden: int = 256):
        super().__init__()
        self.cnn = ResNet(in_channels)
        self.rnn = nn.Sequential(BidirectionalLSTM(512, hidden, hidden), BidirectionalLSTM(hidden, hidden, hidden))
        self.attentionL2R = Attention(hidden, hidden, num_classes)
        self.attentionR2L = Attention(hidden, hidden, num_classes)   # loaded, not read with (as in TextZoom)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Rectified [B, 1, 32, 100] -> sequence features [25, B, 256]."""
        conv = self.cnn(image)                                        # [B, 512, 1, 25]
        return self.rnn(conv.squeeze(2).permute(2, 0, 1).contiguous())


class Moran(nn.Module):
    """Images [B, C, H, W] in [0,1] (C = 1, 3, or 4 with a mask channel, which is dropped) -> class ids
    (`symbol_ids`), and those -> words (`words`).

    Evaluation only: a fixed judge with public weights (`forward` returns the sequence features [25, B, 256])."""

    EVALUATION_ONLY = True

    def __init__(self):
        super().__init__()
        self.MORN = MORN(1, INPUT_SIZE)
        self.ASRN = ASRN()

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in [0,1] -> grey [B, 1, 32, 100]: bicubic resize of RGB first, then grey (TextZoom's order)."""
        if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            raise ValueError(f"MORAN expects images [B, C, H, W] with C in (1, 3, 4), got {tuple(images.shape)}")
        x = images[:, :3].float()
        if tuple(x.shape[-2:]) != INPUT_SIZE:
            x = F.interpolate(x, INPUT_SIZE, mode="bicubic", align_corners=False)
        if x.shape[1] == 1:
            return x
        return GREY_WEIGHTS[0] * x[:, 0:1] + GREY_WEIGHTS[1] * x[:, 1:2] + GREY_WEIGHTS[2] * x[:, 2:3]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ASRN(self.MORN(self.preprocess(images)))

    def symbol_ids(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [0,1] -> class ids [B, 20] of the left-to-right decoder (long). Eval mode and no
        grad are the caller's (tsr.inference.recognize)."""
        return self.ASRN.attentionL2R.greedy(self(images), STEPS)

    @staticmethod
    def words(ids: torch.Tensor) -> list[str]:
        """symbol_ids' [B, 20] -> one word per image, lower-case letters and digits (no weights involved)."""
        return [decode(row) for row in ids.tolist()]


def decode(ids: list[int]) -> str:
    """Class ids -> text through the alphabet, cut at the first '$'."""
    return "".join(ALPHABET[i] for i in ids).split("$")[0]
