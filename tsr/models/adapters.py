"""Feature-level adapters: SR backbone features [B, C=64, H=16, W=64] -> the recognizer's sequence [T=26, B, 512],
the tensor CRNN.encode would give, so CRNN.decode_sequence reads the SR features directly (no SR image).

The four sequence kinds have the same frame (`FeatureAdapter`): each feature-map column becomes one vector of C*H values
(W=64 steps), a kind-specific sequence network maps those to `out_dim`, and the 64 steps are resampled to the
recognizer's T=26. The kinds differ only in that sequence network:
  dense        Linear(C*H -> out_dim) per column
  mlp          Linear(C*H -> hidden), ReLU, Linear(hidden -> out_dim) per column
  sidernn      bidirectional LSTM over the columns (hidden per direction), Linear(2*hidden -> out_dim)
  sidernn+mlp  the same LSTM, then per step Linear(2*hidden -> hidden), ReLU, Linear(hidden -> out_dim)

A fifth kind, `cnn`, keeps the recognizer's own CNN instead of replacing it (`CNNAdapter`):
  cnn          two 3x3 convs make the map the recognizer's CNN has after its first pooling layer, which
               the rest of that CNN and the BiLSTMs then read
A sequence adapter is a new recognizer front end: like a recognizer trained from scratch it sits on CTC's initial
plateau for hundreds of steps before it reads a word (README, "Joint training that pays?"). The cnn adapter only
stands in for the recognizer's first conv layer, a local map from SR features at LR resolution to a map of about
that resolution, so the recognizer's trained layers read its output as soon as that map is approximated.

Resampling 64 -> 26 steps uses adaptive average pooling: each output step averages a window of 3-4
neighbouring columns, so every column contributes (and receives gradient), much as each of CRNN's CNN output
columns sees a window of its input. Linear interpolation would read only 2 columns per step and skip some
columns entirely.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class FeatureAdapter(nn.Module):
    """Features [B, in_channels, feature_height, W] -> sequence [seq_len, B, out_dim].

    `sequence_net` maps the column sequence [W, B, in_channels * feature_height] -> [W, B, out_dim]; it is
    the only part that differs between adapter kinds (see `build_adapter`).
    """

    def __init__(self, kind: str, sequence_net: nn.Module, in_channels: int, feature_height: int, seq_len: int):
        super().__init__()
        self.kind = kind
        self.in_channels = in_channels
        self.feature_height = feature_height
        self.seq_len = seq_len
        self.sequence_net = sequence_net

    def forward(self, features: torch.Tensor, recognizer: nn.Module = None) -> torch.Tensor:
        """`recognizer` (the model's, passed by FullModel) is not used: this adapter replaces its CNN whole."""
        if features.dim() != 4 or tuple(features.shape[1:3]) != (self.in_channels, self.feature_height):
            raise ValueError(f"{self.kind} adapter expects features [B, {self.in_channels}, {self.feature_height}, W], "
                             f"got {tuple(features.shape)}")
        columns = features.flatten(1, 2).permute(2, 0, 1)        # W x B x (C*H)
        sequence = self.sequence_net(columns)                     # W x B x out_dim
        pooled = F.adaptive_avg_pool1d(sequence.permute(1, 2, 0), self.seq_len)   # B x out_dim x T
        return pooled.permute(2, 0, 1).contiguous()               # T x B x out_dim

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, seq_len={self.seq_len}"


class CNNAdapter(nn.Module):
    """Features [B, in_channels, h, w] -> `maps`: conv 3x3, ReLU, conv 3x3, bilinear resize -> [B, *map_shape],
    the activation of the recognizer's CNN module `layer` -> `recognizer.encode_after(layer, .)`: the rest of the
    recognizer's CNN -> sequence [T, B, D]. The recognizer's modules run in its own part (its trainable mode
    decides whether they learn); this module holds only the two convs. The `align` task reads the output of `maps`
    (a forward hook) against the recognizer's `cnn.<layer>` activation of the HR image."""

    kind = "cnn"

    def __init__(self, in_channels: int, hidden: int, map_shape: tuple[int, int, int], layer: str):
        super().__init__()
        self.layer = layer
        self.map_shape = tuple(map_shape)
        self.maps = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, self.map_shape[0], 3, 1, 1),
                                  nn.Upsample(size=self.map_shape[1:], mode="bilinear", align_corners=False))

    def forward(self, features: torch.Tensor, recognizer: nn.Module) -> torch.Tensor:
        return recognizer.encode_after(self.layer, self.maps(features))

    def extra_repr(self) -> str:
        return f"kind='cnn', layer={self.layer!r}, map_shape={self.map_shape}"


class BiLSTMStates(nn.Module):
    """[W, B, in_features] -> [W, B, 2*hidden]: the states of a bidirectional LSTM, both directions
    concatenated (nn.LSTM returns a tuple, so it cannot sit in nn.Sequential alone)."""

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.rnn = nn.LSTM(in_features, hidden, bidirectional=True)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(sequence)
        return states


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Per-step two-layer MLP [..., in_features] -> [..., out_features]."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))


# kind -> (column_dim, hidden, out_dim) -> sequence network [W, B, column_dim] -> [W, B, out_dim]
SEQUENCE_NETS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "dense": lambda column_dim, hidden, out_dim: nn.Linear(column_dim, out_dim),
    "mlp": lambda column_dim, hidden, out_dim: _mlp(column_dim, hidden, out_dim),
    "sidernn": lambda column_dim, hidden, out_dim: nn.Sequential(BiLSTMStates(column_dim, hidden),
                                                                nn.Linear(2 * hidden, out_dim)),
    "sidernn+mlp": lambda column_dim, hidden, out_dim: nn.Sequential(BiLSTMStates(column_dim, hidden),
                                                                    _mlp(2 * hidden, hidden, out_dim)),
}
ADAPTER_KINDS = (*SEQUENCE_NETS, "cnn")
# The recognizer CNN module whose output the cnn adapter makes: crnn's first pooling, whose map (16 x 50 for a
# 32 x 100 input) is the nearest to the LR features' resolution (16 x 64).
CNN_ADAPTER_LAYER = "pooling0"


def build_adapter(kind: str, in_channels: int = 64, feature_height: int = 16, seq_len: int = 26,
                  out_dim: int = 512, hidden: int = 256) -> FeatureAdapter:
    """An adapter of `kind` (one of ADAPTER_KINDS): features [B, in_channels, feature_height, W] ->
    [seq_len, B, out_dim]. `out_dim` must be the recognizer's sequence_dim (512 for crnn.pytorch's CRNN) and
    `seq_len` its T (26 at 32x100). `hidden` is the MLP width and the LSTM's size per direction; dense ignores it.
    """
    if kind not in SEQUENCE_NETS:
        raise ValueError(f"sequence adapter kind must be one of {list(SEQUENCE_NETS)}, got {kind!r}")
    sequence_net = SEQUENCE_NETS[kind](in_channels * feature_height, hidden, out_dim)
    return FeatureAdapter(kind, sequence_net, in_channels, feature_height, seq_len)
