"""Judges: fixed recognizers that read images for evaluation (CRNN, ASTER, MORAN with public weights, or any tsr
checkpoint that holds a recognizer). A judge owns its preprocessing, decoding and text normalisation: it takes
images [B, C, H, W] in [0,1] (RGB, optionally + mask) of any size and returns words of lower-case letters and
digits, exactly as TextZoom compares them. The evaluator, `tsr read` and validation take judges from here.

A judge is named on the command line as KIND:PATH (KIND one of crnn | aster | moran | convctc; PATH a public file
or a tsr checkpoint of that recognizer) or as PATH alone (any checkpoint tsr reads that holds a recognizer).
`tsr eval` also takes OWN ('own'): each checkpoint's own reading of its output (a feature-level model through its
adapter) as one more column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from tsr import inference
from tsr.engine.run_folder import file_label
from tsr.errors import TsrError
from tsr.metrics.text import normalize_for_accuracy

LABELS = {"crnn": "CRNN", "aster": "ASTER", "moran": "MORAN", "convctc": "ConvCTC"}   # recognizer type -> table label
KINDS = tuple(LABELS)
OWN = "own"   # tsr eval's judge spec (and table label) for the rows' own reading

# images [B, C, H, W] in [0,1] -> normalised words
Reader = Callable[[torch.Tensor], list[str]]


@dataclass
class Judge:
    name: str                 # table label: CRNN / ASTER / MORAN (+ the file's stem when two share a kind)
    kind: str                 # crnn | aster | moran
    spec: str                 # as the user gave it
    read: Reader
    hr_size: tuple[int, int]  # (height, width) of the HR images of its config: `tsr read` resizes inputs to it


def parse_spec(spec: str) -> tuple[str | None, str]:
    """'aster:demo.pth.tar' -> ('aster', 'demo.pth.tar'); 'runs/x/best.pth' -> (None, 'runs/x/best.pth')."""
    kind, sep, path = spec.partition(":")
    if sep and kind.lower() in KINDS:
        if not path:
            raise TsrError(f"recognizer '{spec}': no path after '{kind}:' (expected KIND:PATH, KIND one of "
                           f"{', '.join(KINDS)})")
        return kind.lower(), path
    return None, spec


def reader_for(model, cfg: dict) -> Reader:
    """The reading of a loaded model's recognizer part (tsr.inference.recognize), every word normalised as TextZoom
    compares."""
    return lambda images: [normalize_for_accuracy(w) for w in inference.recognize(model, images, cfg)]


def load_judge(spec: str, device: str | torch.device = "cpu") -> Judge:
    """KIND:PATH or PATH -> a frozen judge in eval mode on `device`. TsrError (one line) when the file holds no
    recognizer, or a recognizer of another kind than KIND."""
    kind, path = parse_spec(spec)
    prefix, sep, _ = spec.partition(":")
    if kind is None and sep and "/" not in prefix and not Path(path).exists():
        # 'crn:x.pth' is a mistyped kind far more often than a missing file of that name
        raise TsrError(f"recognizer '{spec}': '{prefix}' is not a recognizer kind ({' | '.join(KINDS)}) and no file "
                       f"'{spec}' exists (expected KIND:PATH or a checkpoint path)")
    model, cfg = inference.load(path, device=device)
    if "recognizer" not in model:
        raise TsrError(f"recognizer '{spec}': {path} holds no recognizer (parts: {sorted(model.keys())})")
    found = cfg["model"]["recognizer"]["type"]
    if kind is not None and found != kind:
        raise TsrError(f"recognizer '{spec}': {path} holds a recognizer of type {LABELS[found]}, not {LABELS[kind]}; "
                       f"use {found}:{path}")
    model.requires_grad_(False)
    return Judge(LABELS[found], found, spec, reader_for(model, cfg), (cfg["data"]["hr_height"], cfg["data"]["hr_width"]))


def load_judges(specs: Sequence[str], device: str | torch.device = "cpu") -> list[Judge]:
    """Several judges; two of the same kind are told apart by their file names ('CRNN (crnn_a)'), or by their run
    folders' for the names every run folder has ('ConvCTC (reader_blur)' for checkpoints/demo/reader_blur/last.pth)."""
    judges = [load_judge(spec, device) for spec in specs]
    shared = {j.name for j in judges if sum(k.name == j.name for k in judges) > 1}
    for judge in judges:
        if judge.name in shared:
            judge.name = f"{judge.name} ({file_label(parse_spec(judge.spec)[1])})"
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise TsrError(f"recognizers {list(specs)} give the same table label twice ({names}); give each once")
    return judges
