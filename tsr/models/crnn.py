"""CRNN recognizer (Shi et al. 2017) in crnn.pytorch's layout, so its public weights load with strict=True.

Module names are crnn.pytorch's: `cnn.conv0` .. `cnn.conv6` (with `cnn.batchnorm2/4/6`), `rnn.0.rnn`,
`rnn.0.embedding`, `rnn.1.rnn`, `rnn.1.embedding`. CRNN(37, 256) has 8,331,301 parameters.

Input preprocessing is inside the module and differentiable, so an SR network's output feeds it directly
(image-level joint training): RGB -> grey 0.299R + 0.587G + 0.114B, then a bicubic resize to 32x100, values
left in [0,1] (no (x-0.5)/0.5 normalisation, no clamping). That is how TextZoom feeds crnn.pytorch's model.
TextZoom resizes first and converts to grey after; both steps are linear, so the order does not change the
result (up to rounding) and converting first resizes one channel instead of three.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Output channels of crnn.pytorch's conv0..conv6; its public weights need exactly these.
CRNN_PYTORCH_CHANNELS = (64, 128, 256, 256, 512, 512, 512)
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL's convert("L") and TextZoom use

# MaxPool2d (kernel, stride, padding). The height-only pools keep the sequence long: width +1 instead of /2.
_POOL_BOTH = ((2, 2), (2, 2), (0, 0))
_POOL_HEIGHT = ((2, 2), (2, 1), (0, 1))
# crnn.pytorch's CNN, conv i: (kernel, padding, batch norm, pool after it). Shapes for a 1x32x100 input.
_CNN_LAYERS = (
    (3, 1, False, _POOL_BOTH),    # 64 x 16 x 50
    (3, 1, False, _POOL_BOTH),    # 128 x 8 x 25
    (3, 1, True, None),           # 256 x 8 x 25
    (3, 1, False, _POOL_HEIGHT),  # 256 x 4 x 26
    (3, 1, True, None),           # 512 x 4 x 26
    (3, 1, False, _POOL_HEIGHT),  # 512 x 2 x 27
    (2, 0, True, None),           # 512 x 1 x 26
)


class BidirectionalLSTM(nn.Module):
    """[T, B, in_features] -> [T, B, out_features]: a bidirectional LSTM (`rnn`), then a linear map of both
    directions' states (`embedding`, [T, B, 2*hidden] -> [T, B, out_features])."""

    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.rnn = nn.LSTM(in_features, hidden, bidirectional=True)
        self.embedding = nn.Linear(hidden * 2, out_features)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rnn(sequence)
        return self.embedding(recurrent)


class CRNN(nn.Module):
    """Images [B, C, H, W] in [0,1] -> CTC logits [T, B, num_classes]; T = 26 at the default 32x100 input size.

    C is 1 (grey), 3 (RGB) or 4 (RGB + TextZoom's mask channel, which is ignored); any H x W is resized to
    `input_size` (see `preprocess`). `num_classes` must equal CTCCodec(alphabet).num_classes: 37 for the
    `lower` alphabet (36 symbols + the CTC blank, class 0).
    """

    # Named fine-tuning modes: submodule paths that stay trainable, everything else is frozen (the uniform
    # wrapper, tsr.models.wrapper.Part, applies them and keeps frozen BatchNorms in eval mode).
    # head_only: only the final classifier learns: the linear map of the last BiLSTM's states to the classes.
    # The CNN and both LSTMs keep their (e.g. public) weights, so a recognizer pre-trained on HR images
    # adapts to SR images with few parameters (18,981 of 8.3M for 37 classes).
    # sequence: both BiLSTMs learn, the CNN stays (feature-level joint training, where an adapter replaces the
    # CNN's output and the CNN is not used at all).
    TRAINABLE_SCOPES = {"head_only": ("rnn.1.embedding",), "sequence": ("rnn",)}

    def __init__(self, num_classes: int = 37, hidden: int = 256, in_channels: int = 1,
                 input_size: Sequence[int] = (32, 100), cnn_channels: Sequence[int] = CRNN_PYTORCH_CHANNELS):
        """`in_channels` 1 is crnn.pytorch's (grey); 3 reads RGB. `cnn_channels` (7 values) narrows the CNN for
        CPU runs; the default is crnn.pytorch's, whose public weights then load. The sequence between CNN and
        LSTMs has `sequence_dim = cnn_channels[-1]` features."""
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"CRNN in_channels must be 1 (grey) or 3 (RGB), got {in_channels}")
        if len(cnn_channels) != len(_CNN_LAYERS):
            raise ValueError(f"cnn_channels needs {len(_CNN_LAYERS)} values (conv0..conv6), got {list(cnn_channels)}")
        input_size = tuple(input_size)
        # The four height-halving pools and conv6 (kernel 2, no padding) bring exactly 32 rows down to 1.
        if len(input_size) != 2 or input_size[0] != 32 or input_size[1] < 8:
            raise ValueError(f"CRNN input_size must be (32, width >= 8), got {input_size}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.input_size = input_size
        self.sequence_dim = cnn_channels[-1]
        # Width through the CNN: /2, /2, +1, +1 (height-only pools), -1 (conv6): 100 -> 26, 128 -> 33.
        self.sequence_length = input_size[1] // 2 // 2 + 1

        self.cnn = nn.Sequential()
        channels, pools = in_channels, 0
        for i, (out_channels, (kernel, padding, batch_norm, pool)) in enumerate(zip(cnn_channels, _CNN_LAYERS)):
            self.cnn.add_module(f"conv{i}", nn.Conv2d(channels, out_channels, kernel, 1, padding))
            if batch_norm:
                self.cnn.add_module(f"batchnorm{i}", nn.BatchNorm2d(out_channels))
            self.cnn.add_module(f"relu{i}", nn.ReLU(True))
            if pool is not None:
                self.cnn.add_module(f"pooling{pools}", nn.MaxPool2d(*pool))
                pools += 1
            channels = out_channels
        self.rnn = nn.Sequential(BidirectionalLSTM(self.sequence_dim, hidden, hidden),
                                 BidirectionalLSTM(hidden, hidden, num_classes))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in [0,1], C in (1, 3, 4) -> [B, in_channels, 32, 100] (differentiable).

        For a grey model (in_channels 1): 0.299R + 0.587G + 0.114B at the input resolution, then
        F.interpolate(mode="bicubic", align_corners=False) to `input_size` (skipped when already that size).
        A 4th (mask) channel is dropped. Values are not normalised or clamped (bicubic may overshoot [0,1]
        slightly), as in TextZoom's evaluation.
        """
        if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            raise ValueError(f"CRNN expects images [B, C, H, W] with C in (1, 3, 4), got {tuple(images.shape)}")
        if self.in_channels == 1 and images.shape[1] != 1:
            r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
            images = GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b
        elif self.in_channels == 3:
            images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bicubic", align_corners=False)
        return images

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] -> the CNN's sequence [T=26, B, sequence_dim=512]: one feature vector per
        column of the CNN's output. Feature-level adapters (tsr.models.adapters) produce this same tensor."""
        return _columns(self.cnn(self.preprocess(images)))

    def map_shape(self, layer: str) -> tuple[int, int, int]:
        """(channels, height, width) of the activation of CNN module `layer` (e.g. "pooling0") for one image."""
        # a copy in eval mode: a BatchNorm on the way neither sees a batch of one in training nor updates its stats
        head = copy.deepcopy(self.cnn[:self._cnn_index(layer) + 1]).eval()
        with torch.no_grad():
            x = head(torch.zeros(1, self.in_channels, *self.input_size, device=next(self.parameters()).device))
        return tuple(x.shape[1:])

    def encode_after(self, layer: str, activation: torch.Tensor) -> torch.Tensor:
        """The rest of the CNN from the activation of module `layer` [B, *map_shape(layer)] -> the sequence
        [T, B, sequence_dim] (what `encode` gives when that activation comes from an image): the cnn adapter
        (tsr.models.adapters) feeds the recognizer's own CNN here."""
        for module in self.cnn[self._cnn_index(layer) + 1:]:
            activation = module(activation)
        return _columns(activation)

    def module_name(self, layer: str) -> str:
        """The name of CNN module `layer` within this model, as forward hooks (tsr.losses.content.layer_outputs)
        and named_modules() know it: "pooling0" -> "cnn.pooling0"."""
        self._cnn_index(layer)
        return f"cnn.{layer}"

    def _cnn_index(self, layer: str) -> int:
        """The position of CNN module `layer` in self.cnn; ValueError naming the modules if there is none."""
        names = [name for name, _ in self.cnn.named_children()]
        if layer not in names:
            raise ValueError(f"CRNN has no CNN module {layer!r}; its modules: {names}")
        return names.index(layer)

    def decode_sequence(self, sequence: torch.Tensor) -> torch.Tensor:
        """Sequence [T, B, sequence_dim] -> logits [T, B, num_classes] (the two BiLSTMs)."""
        if sequence.dim() != 3 or sequence.shape[-1] != self.sequence_dim:
            raise ValueError(f"CRNN.decode_sequence expects [T, B, {self.sequence_dim}], got {tuple(sequence.shape)}")
        # The BiLSTMs run in fp32 even under autocast: with bf16 states (8 mantissa bits) CTC training of the
        # demo CRNN reached 47.7% instead of 63.7% HR accuracy in the same 800 steps.
        with torch.autocast(sequence.device.type, enabled=False):
            return self.rnn(sequence.float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [0,1] -> logits [T=26, B, num_classes] (unnormalised; log_softmax for CTC)."""
        return self.decode_sequence(self.encode(images))


def _columns(features: torch.Tensor) -> torch.Tensor:
    """The CNN's output [B, C, 1, T] -> [T, B, C], laid out contiguously, as the LSTM (cuDNN on GPU) reads it."""
    return features.squeeze(2).permute(2, 0, 1).contiguous()
