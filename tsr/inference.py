"""Inference on a full model: load a checkpoint, super-resolve, read text (eval mode, no grad and decoding live
here; the models return tensors). The engine (validation, tsr eval) and the public `tsr.api` use these functions.

    from tsr import api
    model, cfg = api.load("checkpoints/run/best_acc.pth")      # tsr, TextZoom TSRN or crnn.pytorch files
    sr = api.super_resolve(model, lr)                           # lr [B, C, 16, 64] in [0,1] -> [B, C, 32, 128]
    words = api.recognize(model, sr, cfg)                       # -> ["word", ...]
"""
from __future__ import annotations

import itertools
import os
from contextlib import contextmanager

import torch
from torch import nn

from tsr.checkpoint import load_model_state, read_checkpoint, unwrap
from tsr.config import build_config
from tsr.charset import CTCCodec, alphabet_for
from tsr.errors import TsrError
from tsr.models.wrapper import FullModel


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[FullModel, dict]:
    """Any supported checkpoint -> (model in eval mode on `device`, its resolved config).

    The model is built from the checkpoint's config and its weights load strictly: a checkpoint whose tensors
    do not match its own config is an error (CheckpointError), not a half-loaded model.
    """
    from tsr.engine import fast_path
    from tsr.models.build import build_model

    checkpoint = read_checkpoint(path)
    cfg = build_config(checkpoint["config"], source=f"config stored in {path}")
    if cfg["model"]["quantization"] == "int8" and torch.device(device).type != "cpu":
        raise TsrError(f"{path} is an int8 model (tsr quantize), and int8 kernels run on CPU only; use --device cpu")
    model = build_model(cfg)
    load_model_state(model, checkpoint["model"], strict=True, source=str(path))
    # the config's memory format (train.channels_last) for inference too: NHWC convolutions read TSRN's SR images
    # 2x and the CRNN's 1.9x as fast on this CPU, the same images to 2e-6; int8 modules keep their own layout
    channels_last = cfg["train"]["channels_last"] and cfg["model"]["quantization"] != "int8"
    return fast_path.to_device(model, torch.device(device), channels_last).eval(), cfg


@contextmanager
def _inference(model: nn.Module):
    """Eval mode and no grad for the call; the previous train/eval mode comes back afterwards (validation
    during training calls this on the training model)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _device_of(model: nn.Module) -> torch.device:
    # an int8 network may hold no parameters (packed weights), but always buffers (its quantisation scales)
    return next(itertools.chain(model.parameters(), model.buffers())).device


def _part(model: nn.Module, name: str) -> nn.Module:
    model = unwrap(model)
    if name not in model:
        raise TsrError(f"the model has no '{name}' part (parts: {list(model.keys())})")
    return model[name]


def super_resolve(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """lr [B, C, h, w] in [0,1] (C = 4 with the mask channel) -> SR images [B, C, h*2**stages, w*2**stages]
    (TextZoom: [B, C, 32, 128]), clamped to [0,1]; eval mode, no grad."""
    sr, _ = _part(model, "sr"), _part(model, "head")
    if lr.dim() != 4:
        raise ValueError(f"super_resolve expects lr of shape [B, C, h, w], got {list(lr.shape)}")
    full = unwrap(model)
    with _inference(full):
        return full.output_of("head", lr.to(_device_of(sr))).clamp(0, 1)


def recognize(model: nn.Module, images: torch.Tensor, config: dict) -> list[str]:
    """images [B, C, H, W] in [0,1] (RGB, optionally + mask) -> one predicted word per image: greedy CTC over the
    alphabet of config's data.label_filter, or, for a recognizer with symbol tables of its own (ASTER, MORAN), its
    symbol ids through its table. The recognizer resizes / greys images itself."""
    recognizer = _part(model, "recognizer")
    if hasattr(recognizer.net, "symbol_ids"):
        with _inference(unwrap(model)):
            ids = recognizer.net.symbol_ids(images.to(_device_of(recognizer)))
        return recognizer.net.words(ids)
    codec = CTCCodec(alphabet_for(config["data"]["label_filter"]))
    if codec.num_classes != recognizer.net.num_classes:
        raise ValueError(f"codec has {codec.num_classes} classes (alphabet {codec.alphabet!r}), "
                         f"this recognizer {recognizer.net.num_classes}")
    with _inference(unwrap(model)):
        return codec.decode_greedy(recognizer(images.to(_device_of(recognizer))))


def reads_features(model: nn.Module) -> bool:
    """True for a feature-level model: its recognizer reads SR features through the adapter, not SR images."""
    return "adapter" in unwrap(model)


def super_resolve_and_read(model: nn.Module, lr: torch.Tensor, config: dict) -> tuple[torch.Tensor, list[str]]:
    """lr -> (SR images clamped to [0,1], the words the model's own recognizer reads): a feature-level model reads
    its SR features through the adapter (one pass), an image-level one reads its SR image. Eval mode, no grad."""
    full = unwrap(model)
    if not ("sr" in full and "head" in full and "recognizer" in full):
        raise TsrError(f"super_resolve_and_read needs parts sr, head and recognizer, got {list(full.keys())}")
    if not reads_features(full):
        images = super_resolve(full, lr)
        return images, recognize(full, images, config)
    codec = CTCCodec(alphabet_for(config["data"]["label_filter"]))
    with _inference(full):
        out = full(lr.to(_device_of(full)))
        return out["sr"].clamp(0, 1), codec.decode_greedy(out["logits"])
