"""ASTER (Shi et al. 2018) as TextZoom evaluates with it: aster.pytorch's RecognizerBuilder(arch='ResNet_ASTER',
rec_num_classes=97, sDim=512, attDim=512, max_len_labels=100, eos=94, STN_ON=True), an evaluation-only judge.

Module names are aster.pytorch's, so `demo.pth.tar`'s state dict loads strictly (384 entries, 21,065,769
parameters): `encoder.layer0..5`, `encoder.rnn`, `decoder.decoder.{attention_unit,tgt_embedding,gru,fc}`,
`tps.*` (its buffers come from the file), `stn_head.*`.

Reading (`symbol_ids`, then `words`), as TextZoom's parse_aster_data + eval-mode forward + get_str_list:
RGB image [B, 3, H, W] in [0,1] (32x128 in TextZoom) -> x*2-1 -> bilinear (align_corners=True) to 32x64 for the
STN head (20 control points) -> the TPS samples 32x100 from the full image -> ResNet + 2-layer BiLSTM
[B, 25, 512] -> attention GRU decoder, beam search of width 5 over 100 steps -> symbols up to the first EOS,
UNKNOWN skipped -> only letters and digits, lower-cased.
"""
from __future__ import annotations

import string

import torch
import torch.nn.functional as F
from torch import nn

from tsr.metrics.text import normalize_for_accuracy
from tsr.models.beam_search import beam_search
from tsr.models.tps_stn import STNHead, TPSSpatialTransformer

# aster.pytorch's 'all' vocabulary: 94 symbols in Python `string` order, then the three special symbols.
VOCABULARY = list(string.digits + string.ascii_letters + string.punctuation) + ["EOS", "PADDING", "UNKNOWN"]
EOS, PADDING, UNKNOWN = 94, 95, 96
NUM_CLASSES = len(VOCABULARY)          # 97; the decoder's start symbol is 97
STN_INPUT_SIZE = (32, 64)
RECTIFIED_SIZE = (32, 100)
BEAM_WIDTH = 5
MAX_LEN = 100


def _conv(in_channels: int, out_channels: int, kernel: int, stride=1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False)


class AsterBlock(nn.Module):
    """conv1x1 (stride) - BN - ReLU - conv3x3 - BN, plus the (downsampled) input, ReLU."""

    def __init__(self, in_channels: int, channels: int, stride=1):
        super().__init__()
        self.conv1 = _conv(in_channels, channels, 1, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv(channels, channels, 3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(_conv(in_channels, channels, 1, stride), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class AsterEncoder(nn.Module):
    """Rectified image [B, 3, 32, 100] -> features [B, 25, 512] (ResNet to 1 row, then a 2-layer BiLSTM)."""

    # (channels, blocks, stride) of layer1..layer5; the shapes are for a 32x100 input
    LAYERS = ((32, 3, (2, 2)),   # 16 x 50
              (64, 4, (2, 2)),   # 8 x 25
              (128, 6, (2, 1)),  # 4 x 25
              (256, 6, (2, 1)),  # 2 x 25
              (512, 3, (2, 1)))  # 1 x 25

    def __init__(self):
        super().__init__()
        self.layer0 = nn.Sequential(_conv(3, 32, 3), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        channels = 32
        for i, (out_channels, blocks, stride) in enumerate(self.LAYERS, start=1):
            layer = [AsterBlock(channels, out_channels, stride)]
            layer += [AsterBlock(out_channels, out_channels) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layer))
            channels = out_channels
        self.rnn = nn.LSTM(512, 256, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(6):
            x = getattr(self, f"layer{i}")(x)
        return self.rnn(x.squeeze(2).transpose(1, 2))[0]      # [B, 512, 1, W] -> [B, W, 512]


class AttentionUnit(nn.Module):
    """Additive attention: alpha = softmax_T(w . tanh(S s + X x_t))."""

    def __init__(self, state_dim: int, feature_dim: int, attention_dim: int):
        super().__init__()
        self.sEmbed = nn.Linear(state_dim, attention_dim)
        self.xEmbed = nn.Linear(feature_dim, attention_dim)
        self.wEmbed = nn.Linear(attention_dim, 1)

    def forward(self, projected_features: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """projected_features = xEmbed(features) [M, T, A] (computed once per image), state [M, S] -> [M, T]."""
        energy = torch.tanh(projected_features + self.sEmbed(state).unsqueeze(1))
        return F.softmax(self.wEmbed(energy).squeeze(2), dim=1)


class DecoderUnit(nn.Module):
    """One decoding step: attention context + embedding of the previous symbol -> GRU -> class logits."""

    def __init__(self, state_dim: int = 512, feature_dim: int = 512, num_classes: int = NUM_CLASSES,
                 attention_dim: int = 512):
        super().__init__()
        self.attention_unit = AttentionUnit(state_dim, feature_dim, attention_dim)
        self.tgt_embedding = nn.Embedding(num_classes + 1, attention_dim)   # + the start symbol
        self.gru = nn.GRU(attention_dim + feature_dim, state_dim, batch_first=True)
        self.fc = nn.Linear(state_dim, num_classes)

    def forward(self, previous: torch.Tensor, state: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step as aster.pytorch writes it: previous symbols [M], state [M, S], features [M, T, D]
        -> (logits [M, num_classes], state [M, S]). `step` computes the same faster."""
        alpha = self.attention_unit(self.attention_unit.xEmbed(features), state)
        context = torch.bmm(alpha.unsqueeze(1), features).squeeze(1)
        step_input = torch.cat([self.tgt_embedding(previous), context], dim=1).unsqueeze(1)
        output, new_state = self.gru(step_input, state.unsqueeze(0).contiguous())
        return self.fc(output.squeeze(1)), new_state.squeeze(0)

    def memory(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What every step reads, computed once per image: features [B, T, D] -> (xEmbed(features) [B, T, A],
        the GRU's input weights applied to every feature vector [B, T, 3S], the same for every symbol's
        embedding incl. the biases [classes+1, 3S]). The attention context is a weighted mean of the features,
        so projecting the features first and averaging after is the same linear map, done once instead of at
        every step (results equal up to float rounding)."""
        embedding_dim = self.tgt_embedding.embedding_dim
        w_embedding, w_context = self.gru.weight_ih_l0[:, :embedding_dim], self.gru.weight_ih_l0[:, embedding_dim:]
        symbols = F.linear(self.tgt_embedding.weight, w_embedding, self.gru.bias_ih_l0)
        return self.attention_unit.xEmbed(features), F.linear(features, w_context), symbols

    def step(self, previous: torch.Tensor, state: torch.Tensor, memory) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` with the per-image parts precomputed by `memory` (memory tensors [M, ...]; the symbol table
        is shared): previous [M], state [M, S] -> (logits [M, classes], state [M, S])."""
        projected, context_gates, symbol_gates = memory
        alpha = self.attention_unit(projected, state)                                   # [M, T]
        input_gates = torch.bmm(alpha.unsqueeze(1), context_gates).squeeze(1) + symbol_gates[previous]
        hidden_gates = F.linear(state, self.gru.weight_hh_l0, self.gru.bias_hh_l0)
        i_r, i_z, i_n = input_gates.chunk(3, dim=1)                                      # torch's GRU gate order
        h_r, h_z, h_n = hidden_gates.chunk(3, dim=1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        new_state = (1 - update) * torch.tanh(i_n + reset * h_n) + update * state
        return self.fc(new_state), new_state


class AttentionHead(nn.Module):
    """Holds the step module as `decoder` (aster.pytorch's AttentionRecognitionHead; keys decoder.decoder.*)."""

    def __init__(self):
        super().__init__()
        self.decoder = DecoderUnit()

    def beam_search(self, features: torch.Tensor, beam_width: int = BEAM_WIDTH,
                    max_len: int = MAX_LEN) -> list[list[int]]:
        """features [B, T, 512] -> the best symbol ids of each image, up to (without) EOS."""
        unit = self.decoder
        projected, context_gates, symbol_gates = unit.memory(features)
        state = features.new_zeros(features.shape[0], unit.gru.hidden_size)
        return beam_search(lambda previous, state, memory: unit.step(previous, state, (*memory, symbol_gates)),
                           (projected, context_gates), state, num_classes=NUM_CLASSES, eos=EOS, start=NUM_CLASSES,
                           beam_width=beam_width, max_len=max_len)


class Aster(nn.Module):
    """Images [B, C, H, W] in [0,1] (C = 1, 3, or 4 with a mask channel, which is dropped) -> symbol ids
    (`symbol_ids`), and those -> words (`words`).

    Evaluation only: a fixed judge with public weights (there is no training path; `forward` returns the
    encoder's features [B, 25, 512])."""

    EVALUATION_ONLY = True

    def __init__(self):
        super().__init__()
        self.encoder = AsterEncoder()
        self.decoder = AttentionHead()
        # torch < 1.3's grid_sample aligned corners; the weights were trained with it
        self.tps = TPSSpatialTransformer(RECTIFIED_SIZE, num_control_points=20, margins=(0.05, 0.05),
                                         align_corners=True)
        self.stn_head = STNHead(in_channels=3, num_control_points=20)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in [0,1] -> RGB [B, 3, H, W] in [-1, 1] (TextZoom's parse_aster_data: x*2-1, any size)."""
        if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            raise ValueError(f"ASTER expects images [B, C, H, W] with C in (1, 3, 4), got {tuple(images.shape)}")
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
        return rgb.float() * 2 - 1

    def rectify(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> [B, 3, 32, 100]: the STN head reads a 32x64 copy, the TPS samples the input."""
        small = F.interpolate(x, STN_INPUT_SIZE, mode="bilinear", align_corners=True)
        return self.tps(x, self.stn_head(small))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [0,1] -> encoder features [B, 25, 512]."""
        return self.encoder(self.rectify(self.preprocess(images)))

    def symbol_ids(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [0,1] -> the best beam's symbol ids [B, L] (long), each word followed by EOS up
        to L, the longest word's length. Eval mode and no grad are the caller's (tsr.inference.recognize)."""
        beams = self.decoder.beam_search(self(images))
        ids = torch.full((len(beams), max(map(len, beams), default=0)), EOS, dtype=torch.long)
        for row, beam in zip(ids, beams):
            row[:len(beam)] = torch.tensor(beam, dtype=torch.long)
        return ids

    @staticmethod
    def words(ids: torch.Tensor) -> list[str]:
        """symbol_ids' [B, L] -> one word per image, lower-case letters and digits (no weights involved)."""
        return [decode(row) for row in ids.tolist()]


def decode(ids: list[int]) -> str:
    """Symbol ids up to EOS -> text as TextZoom compares it: UNKNOWN and PADDING dropped, punctuation dropped,
    lower-cased (get_str_list's _normalize_text)."""
    return normalize_for_accuracy("".join(VOCABULARY[i] for i in ids if i < EOS))
