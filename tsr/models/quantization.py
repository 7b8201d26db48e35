"""int8 for the SR network (parts sr + head) with PyTorch's eager-mode quantization (torch.ao.quantization: fuse,
QuantStub / DeQuantStub, prepare / prepare_qat, convert); `model.int8_engine` picks the kernels that run it.

`model.quantization` says what build_model makes of the sr and head parts:
    fp32  plain float modules
    qat   fake-quantised modules (quantisation-aware training: configs/qat.yaml; trained, checkpointed and resumed
          like any stage)
    int8  converted int8 modules, the layout of the checkpoints `tsr quantize` writes; their weights then load
          strictly like any checkpoint's (build the structure, load the state)
Other parts (recognizer, adapter) stay float. A network is quantizable when it brings its own stubs and says
which modules to fuse (`quant_fuse_groups()`): ABPN and the shuffle / anchor heads do.

Why eager mode rather than torchao's PT2E flow: it is part of torch (no new dependency), it works on the
nn.Modules tsr already has, so a QAT model is a FullModel whose state dict is checkpointed, resumed and loaded
through tsr's one checkpoint path, and an int8 model is rebuilt from its config like any other (PT2E captures a
graph with torch.export and yields a GraphModule whose keys are not tsr's part keys).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterable

import torch
import torch.ao.quantization as tq
from torch.ao.quantization.fake_quantize import FakeQuantizeBase, FusedMovingAvgObsFakeQuantize
from torch.ao.quantization.observer import MovingAveragePerChannelMinMaxObserver

from tsr.config import ConfigError
from tsr.models.wrapper import FullModel

PARTS = ("sr", "head")
MODES = ("fp32", "qat", "int8")           # the values of model.quantization
# model.int8_engine: the kernels of the int8 modules (torch.backends.quantized.engine when they are converted or
# loaded). onednn is the default: on this project's CPUs (AVX2, no VNNI) it ran the int8 ABPN at batch 64 in 0.62x
# the time of channels-last fp32, where x86 (which chose fbgemm here) was no faster than fp32 (README, int8).
ENGINES = ("onednn", "x86", "fbgemm", "qnnpack")


@contextmanager
def _quiet():
    """torch.ao.quantization warns that eager mode is deprecated in favour of torchao, and that observers which
    never saw data (an int8 structure built for loading) give default parameters: both expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# Observers: x86's on every engine. Its activations use 7 of the 8 bits (reduce_range): u8 x s8 products summed
# in pairs saturate int16 on CPUs without VNNI, and onednn with full-range activations (its own default) was off by
# up to 0.29 on [0, 1] images where reduce_range keeps the error of x86 (0.04).
OBSERVERS = "x86"


def _ptq_qconfig() -> tq.QConfig:
    return tq.get_default_qconfig(OBSERVERS)


def _qat_qconfig() -> tq.QConfig:
    """x86's QAT qconfig, except that weight observers follow the current weights exactly (averaging 1): a QAT
    stage starts from float weights loaded after the model is built, and the default moving average (0.01) would
    keep the ranges of the random initial weights for hundreds of steps."""
    weight = FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric, averaging_constant=1.0)
    return tq.QConfig(activation=tq.get_default_qat_qconfig(OBSERVERS).activation, weight=weight)


def use_engine(engine: str) -> None:
    """Make `engine` (one of ENGINES) the one int8 modules are packed for from now on; ConfigError when this torch
    build lacks it."""
    supported = set(torch.backends.quantized.supported_engines)
    if engine not in ENGINES or engine not in supported:
        raise ConfigError(f"config key 'model.int8_engine' is {engine!r}; this torch supports "
                          f"{[e for e in ENGINES if e in supported]}")
    torch.backends.quantized.engine = engine


def check_quantizable(model: FullModel) -> None:
    """ConfigError unless the model has sr and head parts that are quantizable."""
    missing = [p for p in PARTS if p not in model]
    if missing:
        raise ConfigError(f"model.quantization: the model has no {missing} part; int8 applies to the SR network "
                          f"(parts {list(PARTS)})")
    for name in PARTS:
        net = model[name].net
        if not hasattr(net, "quant_fuse_groups"):
            raise ConfigError(f"model.quantization: the {name} network {type(net).__name__} has no int8 layout "
                              "(eager-mode stubs); quantizable: model.sr.type=abpn with model.head.type=anchor or "
                              "shuffle")


def prepare(model: FullModel, mode: str, engine: str = ENGINES[0]) -> FullModel:
    """Turn the sr and head parts of `model` (fp32) into the `mode` layout in place: one of MODES (see the module
    docstring), or "ptq": observers for calibration (`calibrate`, then `convert`). `engine`: model.int8_engine."""
    if mode == "fp32":
        return model
    if mode not in (*MODES, "ptq"):
        raise ConfigError(f"config key 'model.quantization' must be one of {list(MODES)}, got {mode!r}")
    check_quantizable(model)
    use_engine(engine)
    with _quiet():
        for name in PARTS:
            part = model[name]
            net, was_training = part.net, part.training
            if mode == "qat":
                net.train()
                tq.fuse_modules_qat(net, net.quant_fuse_groups(), inplace=True)
                net.qconfig = _qat_qconfig()
                tq.prepare_qat(net, inplace=True)
                refresh_weight_ranges(net)      # per-channel buffers get their shapes: checkpoints load strictly
                net.register_forward_pre_hook(_observe_activations_only_in_training(net))
            else:
                net.eval()
                tq.fuse_modules(net, net.quant_fuse_groups(), inplace=True)
                net.qconfig = _ptq_qconfig()
                tq.prepare(net, inplace=True)
            part.train(was_training)
    if mode == "int8":
        convert(model, engine)
    return model


def convert(model: FullModel, engine: str = ENGINES[0]) -> FullModel:
    """Observed (PTQ-calibrated) or fake-quantised (QAT) sr and head parts -> int8 modules for `engine`, in place."""
    use_engine(engine)
    with _quiet():
        for name in PARTS:
            net = model[name].net
            refresh_weight_ranges(net)
            net.eval()
            tq.convert(net, inplace=True)
    return model.eval()


def refresh_weight_ranges(net: torch.nn.Module) -> None:
    """Let every weight fake-quantiser observe its module's current weights (data-free)."""
    with torch.no_grad():
        for module in net.modules():
            fake_quant = getattr(module, "weight_fake_quant", None)
            if fake_quant is not None:
                fake_quant.enable_observer()
                fake_quant(module.weight)


def _observe_activations_only_in_training(net: torch.nn.Module):
    """A forward pre-hook: activation ranges follow the training batches only (validation and evaluation images
    must not move them); weight ranges always follow the weights."""
    activations = [m for name, m in net.named_modules()
                   if isinstance(m, FakeQuantizeBase) and not name.endswith("weight_fake_quant")]

    def hook(module, _args):
        for fake_quant in activations:
            fake_quant.enable_observer(module.training)

    return hook


@torch.no_grad()
def calibrate(model: FullModel, lr_batches: Iterable[torch.Tensor]) -> int:
    """PTQ: run the sr and head parts (prepared with mode ptq) over LR batches [B, C, h, w] so that the observers
    see the activation ranges; returns the number of images seen."""
    seen = 0
    for name in PARTS:
        model[name].eval()
    for lr in lr_batches:
        model.output_of("head", lr)
        seen += lr.shape[0]
    return seen


def is_int8(model: FullModel) -> bool:
    """The SR network holds converted int8 modules (CPU only)."""
    return "sr" in model and any(isinstance(m, torch.ao.nn.quantized.Quantize) for m in model["sr"].modules())
