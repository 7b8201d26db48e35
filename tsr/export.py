"""`tsr export`: the SR network of a float checkpoint (parts sr + head) as an ONNX file that runs without tsr.

The graph is LR [batch, C, h, w] in [0,1] -> SR [batch, C, h*s, w*s] clamped to [0,1], exactly
`tsr.inference.super_resolve` (eval mode: TSRN's STN, which rectifies only in training, is not in the graph); the
batch dimension is dynamic, h and w are the config's LR size. Exported with torch.onnx's TorchScript-based
exporter (dynamo=False): it needs no onnxscript and handles TSRN's GRUs; opset 17.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from tsr.errors import TsrError
from tsr.images import lr_shape
from tsr.models.wrapper import FullModel

OPSET = 17
INPUT, OUTPUT = "lr", "sr"


class SRNetwork(nn.Module):
    """A FullModel's SR output as one module: LR [B, C, h, w] -> SR [B, C, H, W] in [0,1] (parts the head does
    not read, such as a recognizer, are not run and not exported)."""

    def __init__(self, model: FullModel):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model.output_of("head", lr).clamp(0, 1)


def export_onnx(model: FullModel, cfg: dict, path: str | os.PathLike) -> Path:
    """Write the SR network of `model` (built from `cfg`, weights loaded) to `path` as ONNX; returns the path."""
    missing = [p for p in ("sr", "head") if p not in model]
    if missing:
        raise TsrError(f"the checkpoint has no {missing} part (parts: {list(model.keys())}); ONNX export takes the "
                       "SR network (sr + head)")
    if cfg["model"]["quantization"] != "fp32":
        raise TsrError(f"model.quantization is {cfg['model']['quantization']}: export the float checkpoint (the "
                       "ONNX graph is fp32; int8 deployment is tsr quantize's)")
    data = cfg["data"]
    example = torch.rand(2, *lr_shape(data))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo's and warns about shape checks it traces
        warnings.simplefilter("ignore")
        torch.onnx.export(SRNetwork(model).eval(), (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    return path
