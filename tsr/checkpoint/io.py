"""Checkpoint files: one file per full model, written atomically (tensors on the CPU, only what
`torch.load(weights_only=True)` accepts) and read safely, public layouts converted on read (`tsr.checkpoint.public`).

The layout is described in `tsr.checkpoint`.
"""
from __future__ import annotations

import codecs
import os
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np
import torch
from torch import nn

from tsr import provenance
from tsr.checkpoint import public
from tsr.checkpoint.integrity import DIGEST_KEY, non_finite_keys, tensor_digest
from tsr.checkpoint.public import FORMAT, VERSION
from tsr.errors import CheckpointError
from tsr.io import atomic_write

TRAINING_STATE_KEYS = ("optimizer", "scheduler", "scaler", "trainer", "rng")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside any nesting of DDP / DataParallel (`.module`) and torch.compile (`._orig_mod`)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


# ---------------------------------------------------------------------------------------------- saving


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict, step: int,
                    metrics: Optional[dict] = None, **training_state: Any) -> Path:
    """Write one full-model checkpoint atomically (readers never see a half-written file).

    `training_state` takes optimizer / scheduler / scaler / trainer (objects with `state_dict()` or state
    dicts) and rng (see `tsr.engine.rng.capture_rng_state`). Model weights are taken from the unwrapped model, so keys never
    carry `module.` / `_orig_mod.`, and every tensor is moved to the CPU.
    """
    unknown = sorted(set(training_state) - set(TRAINING_STATE_KEYS))
    if unknown:
        raise ValueError(f"save_checkpoint: unknown training state {unknown}; expected some of {TRAINING_STATE_KEYS}")
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                               "model": unwrap(model).state_dict(), "config": config, "step": int(step),
                               "metrics": metrics}
    for key, value in training_state.items():
        if value is not None:
            payload[key] = value.state_dict() if hasattr(value, "state_dict") else value
    return write_checkpoint(path, payload)


def write_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """torch.save `payload` (tensors moved to CPU, NumPy values made plain) atomically, after checking that it
    holds only what `torch.load(weights_only=True)` accepts, so a file is never written that tsr cannot read, and
    that its model weights are finite. The file carries the digest of its tensors (`tensors_sha256`), checked on
    read, and its writer's provenance (`tsr.provenance`: command line, versions, commit, device)."""
    payload = _plain({**payload, "provenance": provenance.collect()})
    _check_plain(payload, "checkpoint")
    bad = non_finite_keys(payload.get("model", {}))
    if bad:
        raise CheckpointError(f"refusing to write {path}: non-finite weights (NaN/inf) in {len(bad)} tensor(s), "
                              f"{', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}; a "
                              "checkpoint is never written with them")
    payload[DIGEST_KEY] = tensor_digest(payload)
    return atomic_write(path, lambda f: torch.save(payload, f))


def _plain(obj: Any) -> Any:
    """CPU tensors; NumPy scalars (e.g. a metric that is np.float64, a float subclass that pickles as a NumPy
    object) -> Python numbers; NumPy arrays -> tensors; mappings -> dicts."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, torch.Size):
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj) if type(obj) in (list, tuple) else list(map(_plain, obj))
    return obj


_PLAIN = (str, int, float, bool, type(None), torch.Size, torch.dtype, torch.device)


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN:
        return
    if type(obj) is dict:
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise ValueError(f"{where}: key {key!r} is a {type(key).__name__}; checkpoints take str/int keys")
            _check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
        return
    raise ValueError(f"{where} is a {type(obj).__name__}; a checkpoint may only hold tensors, numbers, strings, "
                     f"None and lists/dicts of them (torch.load(weights_only=True) refuses anything else)")


# --------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | os.PathLike, expected_format: Optional[str] = None) -> dict:
    """Any supported checkpoint file -> the tsr layout (see the module docstring).

    tsr checkpoints are returned as stored; TextZoom TSRN, crnn.pytorch, ASTER and MORAN files are converted
    (keys `sr.net.*` + `head.net.*`, or `recognizer.net.*`; a config carrying the inferred architecture) and get
    `"converted_from"`. `expected_format` ("tsr" or a `public.CONVERTERS` key) makes any other layout an
    error. CheckpointError (naming the path) for a missing file, a file torch cannot read, or an unknown layout.
    """
    path = Path(path)
    obj = _torch_load(path)
    kind = public.detect_public_format(obj)
    if expected_format is not None and kind != expected_format:
        found = f"a {kind} checkpoint" if kind else f"not a checkpoint layout tsr knows ({_describe(obj)})"
        hint = f"; use --from {kind}" if kind in public.CONVERTERS else ""
        raise CheckpointError(f"{path}: expected a {expected_format} checkpoint, but it is {found}{hint}")
    if kind == public.TSR:
        return _checked_tsr(obj, path)
    if kind in public.CONVERTERS:
        return public.to_tsr(obj, kind, path)
    raise CheckpointError(f"{path}: not a checkpoint layout tsr knows ({_describe(obj)}); expected a tsr checkpoint "
                          f"(format: tsr), a TextZoom TSRN checkpoint (state_dict_G), a crnn.pytorch CRNN state dict, "
                          f"aster.pytorch's demo.pth.tar or MORAN_v2's moran.pth")


def check_checkpoint_path(path: str | Path) -> Path:
    """CheckpointError unless `path` is a file (checked before a long job opens it)."""
    path = Path(path)
    if path.is_dir():
        # most often a run folder where one of its checkpoints was meant (which one is the caller's to say)
        held = sorted(p.name for p in path.glob("*.pth") if p.is_file())
        raise CheckpointError(f"checkpoint {path} is a folder; expected a checkpoint file"
                              + (f" (it holds {', '.join(held)})" if held else ""))
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists()
                              else f"checkpoint {path} is not a file")
    return path


@contextmanager
def named_by(setting: str) -> Iterator[None]:
    """A checkpoint that cannot be read says which setting named it ('train.init: checkpoint runs/sr is a folder')."""
    try:
        yield
    except CheckpointError as e:
        raise CheckpointError(f"{setting}: {e}") from None


def _torch_load(path: Path) -> Any:
    check_checkpoint_path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in arbitrary ways
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        # torch.load hands any file that is not a zip archive to its pickle reader, which refuses the first bytes it
        # does not know (a PNG's 0x89 0x50) with its weights_only error, as if the file were a pickle of objects
        not_torch = _not_a_torch_file(path)
        if not_torch:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint file ({not_torch}; torch.save writes a zip "
                                  f"archive, files of torch < 1.6 a pickle)") from None
        if isinstance(e, pickle.UnpicklingError) and "weights only" in str(e).lower():
            raise CheckpointError(f"{path}: holds Python objects other than tensors and plain containers, which "
                                  f"tsr does not unpickle (it loads with weights_only=True for safety): "
                                  f"{message}") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint, or a truncated one "
                              f"(torch.load failed: {message})") from None


# leading bytes -> what a file that is no checkpoint most likely is (the files people mix up with checkpoints)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"\x1f\x8b", "a gzip file"), (b"\x7fELF", "a program"))


def _not_a_torch_file(path: Path) -> Optional[str]:
    """What the file is when it cannot be one torch.save wrote (neither a zip archive nor a pickle, whose first
    byte is the PROTO opcode 0x80 from protocol 2 on); None when it may be one."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return None
    if not head:
        return "it is empty"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return f"it is {kind}"
    try:
        # incremental: a character cut at byte 512 is not a decoding error
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it is a text file"
    return f"it starts with the bytes {head[:8].hex(' ')}"


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {public.preview_keys(obj.keys())}"
    return f"a {type(obj).__name__}"


def _checked_tsr(obj: dict, path: Path) -> dict:
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path}: tsr checkpoint version {obj.get('version')!r}; this tsr reads version {VERSION}")
    for key, kind in (("model", Mapping), ("config", Mapping)):
        if not isinstance(obj.get(key), kind):
            raise CheckpointError(f"{path}: tsr checkpoint without a '{key}' dict (keys: {sorted(obj)})")
    stored = obj.get(DIGEST_KEY)        # files written before tsr stored digests have none
    if stored is not None and stored != tensor_digest(obj):
        raise CheckpointError(f"{path}: its tensors do not match the checksum stored with them: the file was damaged "
                              "after it was written (flipped bits on a disk or in a copy); use another copy")
    return obj
