"""Public checkpoints of the two other recognizers of the STISR literature -> tsr's recognizer part.

- ASTER: aster.pytorch's `demo.pth.tar`, {'state_dict': ..., 'epoch', 'best_res', ...} (the bare state dict
  too); keys as they are (tsr.models.aster uses aster.pytorch's module names).
- MORAN: MORAN_v2's `moran.pth`, a state dict saved from DataParallel (every key `module.`-prefixed, stripped
  here, as TextZoom does).

A file is checked against the model's full key and shape list, so a wrong layout fails with one line naming
what differs. Functions return part-local keys (the wrapper adds `recognizer.net.`).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from tsr.errors import CheckpointError
from tsr.keys import strip_prefixes

ASTER = "aster"
MORAN = "moran"
FORMATS = (ASTER, MORAN)
PUBLIC_FILES = {ASTER: "demo.pth.tar (aster.pytorch)", MORAN: "moran.pth (MORAN_v2)"}
# keys that only that recognizer's checkpoints hold (after `module.` is stripped)
_SIGNATURE = {ASTER: ("encoder.layer0.0.weight", "decoder.decoder.fc.weight"),
              MORAN: ("MORN.cnn.1.weight", "ASRN.attentionL2R.generator.weight")}


def _state_dict(obj: Any) -> Optional[dict]:
    """aster.pytorch's {'state_dict': sd, ...} or a bare state dict -> the state dict without `module.`; None if
    `obj` is neither."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        return None
    try:
        return strip_prefixes(obj)
    except CheckpointError:
        return None


def detect(obj: Any) -> Optional[str]:
    """"aster" | "moran" when `obj` (a loaded file) holds that recognizer's keys, else None."""
    state = _state_dict(obj)
    if state is None:
        return None
    for kind, keys in _SIGNATURE.items():
        if any(key in state for key in keys):
            return kind
    return None


def new_model(kind: str) -> torch.nn.Module:
    """The network of `kind` at its public size (random weights)."""
    from tsr.models.aster import Aster
    from tsr.models.moran import Moran

    return {ASTER: Aster, MORAN: Moran}[kind]()


def to_part(obj: Any, kind: str, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A loaded public file of `kind` -> its recognizer state (part-local keys), checked key by key and shape by
    shape against the model; CheckpointError (one line) on any difference."""
    state = _state_dict(obj)
    found = detect(obj)
    if state is None or found != kind:
        what = (f"it holds {found.upper()}'s keys; use {found}:PATH or --from {found}" if found
                 else f"it holds none of its keys ({', '.join(_SIGNATURE[kind])})")
        raise CheckpointError(f"{source}: expected {kind.upper()}'s {PUBLIC_FILES[kind]}, but {what}")
    expected = {k: tuple(v.shape) for k, v in new_model(kind).state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(expected[k])})" for k in expected
             if k in state and tuple(getattr(state[k], "shape", ())) != expected[k]]
    if missing or unexpected or wrong:
        problems = [f"{label} {len(keys)} (e.g. {', '.join(keys[:2])})"
                    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                    if keys]
        raise CheckpointError(f"{source}: not the layout of {kind.upper()}'s {PUBLIC_FILES[kind]}: "
                              + "; ".join(problems))
    return state


def to_tsr(obj: Any, kind: str, source: str = "checkpoint") -> tuple[dict, dict]:
    """-> (tsr model state {recognizer.net.<key>: tensor}, the config of a frozen recognizer-only model)."""
    state = to_part(obj, kind, source)
    config = {"model": {"parts": ["recognizer"], "recognizer": {"type": kind, "trainable": "none"}}}
    return {f"recognizer.net.{k}": v for k, v in state.items()}, config
