"""Checkpoints that tell the truth: one file per full model, written atomically, read safely, loaded with a
report of exactly what did and did not load.

Layout of a tsr checkpoint (everything loads with `torch.load(weights_only=True)`):
    {"format": "tsr", "version": 1, "model": {<part>.net.<key>: CPU tensor}, "config": resolved config tree,
     "step": int, "metrics": dict | None, [optimizer, scheduler, scaler, trainer, rng]: state dicts}
(learned loss weights are model tensors: the `weighting` part, keys weighting.net.*)
Public checkpoints (TextZoom TSRN, crnn.pytorch CRNN) are converted into this layout when read.
"""
from __future__ import annotations

import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from tsr.errors import CheckpointError
from tsr.io import atomic_write
from tsr.keys import strip_key, strip_prefixes  # noqa: F401  (re-exported: part of the checkpoint API)
from tsr.models import public_recognizers as pr
from tsr.models import public_weights as pw

FORMAT = "tsr"
VERSION = 1
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
    dicts) and rng (see `capture_rng_state`). Model weights are taken from the unwrapped model, so keys never
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
    holds only what `torch.load(weights_only=True)` accepts, so a file is never written that tsr cannot read."""
    payload = _plain(payload)
    _check_plain(payload, "checkpoint")
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


def capture_rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states as tensors/lists, safe for weights_only loading."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():   # this process's GPU only: a node with fewer GPUs can still resume
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of `capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# --------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | os.PathLike, expected_format: Optional[str] = None) -> dict:
    """Any supported checkpoint file -> the tsr layout (see the module docstring).

    tsr checkpoints are returned as stored; TextZoom TSRN and crnn.pytorch files are converted (keys
    `sr.net.*` + `head.net.*`, or `recognizer.net.*`; a config carrying the inferred architecture) and get
    `"converted_from"`. `expected_format` ("tsr" | "textzoom-tsrn" | "crnn-pytorch") makes any other layout an
    error. CheckpointError (naming the path) for a missing file, a file torch cannot read, or an unknown layout.
    """
    path = Path(path)
    obj = _torch_load(path)
    kind = pw.detect_public_format(obj) or pr.detect(obj)
    if expected_format is not None and kind != expected_format:
        found = f"a {kind} checkpoint" if kind else f"not a checkpoint layout tsr knows ({_describe(obj)})"
        hint = f"; use --from {kind}" if kind in (pw.TEXTZOOM_TSRN, pw.CRNN_PYTORCH, *pr.FORMATS) else ""
        raise CheckpointError(f"{path}: expected a {expected_format} checkpoint, but it is {found}{hint}")
    if kind == pw.TSR:
        return _checked_tsr(obj, path)
    if kind == pw.TEXTZOOM_TSRN:
        return _from_textzoom(obj, path)
    if kind == pw.CRNN_PYTORCH:
        return _from_crnn_pytorch(obj, path)
    if kind in pr.FORMATS:
        return _converted(*pr.to_tsr(obj, kind, str(path)), kind)
    raise CheckpointError(f"{path}: not a checkpoint layout tsr knows ({_describe(obj)}); expected a tsr checkpoint "
                          f"(format: tsr), a TextZoom TSRN checkpoint (state_dict_G), a crnn.pytorch CRNN state dict, "
                          f"aster.pytorch's demo.pth.tar or MORAN_v2's moran.pth")


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists()
                              else f"checkpoint {path} is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in arbitrary ways
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, pickle.UnpicklingError) and "weights only" in str(e).lower():
            raise CheckpointError(f"{path}: holds Python objects other than tensors and plain containers, which "
                                  f"tsr does not unpickle (it loads with weights_only=True for safety): "
                                  f"{message}") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint, or a truncated one "
                              f"(torch.load failed: {message})") from None


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {pw._preview(obj.keys())}"
    return f"a {type(obj).__name__}"


def _checked_tsr(obj: dict, path: Path) -> dict:
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path}: tsr checkpoint version {obj.get('version')!r}; this tsr reads version {VERSION}")
    for key, kind in (("model", Mapping), ("config", Mapping)):
        if not isinstance(obj.get(key), kind):
            raise CheckpointError(f"{path}: tsr checkpoint without a '{key}' dict (keys: {sorted(obj)})")
    return obj


def _fill_num_batches_tracked(state: dict) -> dict:
    """Checkpoints from PyTorch < 0.4 (e.g. crnn.pytorch's published crnn.pth) have BN layers without
    `num_batches_tracked`; it only matters for BN with momentum=None, so 0 is the honest value to add."""
    for key in [k for k in state if k.endswith(".running_mean")]:
        state.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return state


def _converted(model: dict, config: dict, source_format: str) -> dict:
    from tsr.config import build_config

    return {"format": FORMAT, "version": VERSION, "model": model, "step": 0, "metrics": None,
            "config": build_config(config, source=f"{source_format} conversion"), "converted_from": source_format}


def _from_textzoom(obj: Mapping, path: Path) -> dict:
    options = pw.infer_textzoom_tsrn_options(obj, source=str(path))
    if options["in_channels"] not in (3, 4) or options["out_channels"] != options["in_channels"]:
        raise CheckpointError(f"{path}: TextZoom TSRN with {options['in_channels']} input and "
                              f"{options['out_channels']} output channels; tsr expects 3 -> 3 (RGB) or 4 -> 4 (mask)")
    parts = pw.textzoom_tsrn_to_parts(obj, source=str(path))
    model = {f"{part}.net.{key}": value for part in ("sr", "head")
             for key, value in _fill_num_batches_tracked(dict(parts[part])).items()}
    defaults = _defaults()
    lr_h, lr_w = defaults["data"]["lr_height"], defaults["data"]["lr_width"]
    config = {"data": {"mask": options["in_channels"] == 4, "hr_height": lr_h * 2 ** options["stages"],
                       "hr_width": lr_w * 2 ** options["stages"]},
              "model": {"parts": ["sr", "head"],
                        "sr": {"blocks": options["blocks"], "channels": options["channels"], "stn": options["stn"]},
                        "head": {"stages": options["stages"]}}}
    return _converted(model, config, pw.TEXTZOOM_TSRN)


def _from_crnn_pytorch(obj: Mapping, path: Path) -> dict:
    from tsr.data.charset import ALPHABETS

    state = _fill_num_batches_tracked(dict(pw.crnn_pytorch_to_part(obj, source=str(path))))
    try:
        num_classes = int(state["rnn.1.embedding.weight"].shape[0])
        hidden = int(state["rnn.0.rnn.weight_hh_l0"].shape[1])
        in_channels = int(state["cnn.conv0.weight"].shape[1])
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"{path}: crnn.pytorch state dict without the expected tensor {e}") from None
    by_classes = {len(alphabet) + 1: name for name, alphabet in ALPHABETS.items()}
    if num_classes not in by_classes:
        raise CheckpointError(f"{path}: CRNN with {num_classes} classes; tsr's alphabets give "
                              + ", ".join(f"{n} ({name})" for n, name in sorted(by_classes.items())))
    if in_channels != 1:
        raise CheckpointError(f"{path}: CRNN with {in_channels} input channels; tsr's CRNN reads grey images (1)")
    config = {"data": {"label_filter": by_classes[num_classes]},
              "model": {"parts": ["recognizer"], "recognizer": {"hidden": hidden}}}
    return _converted({f"recognizer.net.{k}": v for k, v in state.items()}, config, pw.CRNN_PYTORCH)


def _defaults() -> dict:
    from tsr.config import load_defaults

    return load_defaults()


# --------------------------------------------------------------------------------------------- loading


@dataclass
class LoadReport:
    """What `load_model_state` did: counts and exact key lists (wrong_shape: (key, checkpoint shape, model shape))."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    source: str = "checkpoint"

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def __str__(self) -> str:
        total = len(self.loaded) + len(self.missing) + len(self.wrong_shape)
        lines = [f"{self.source}: loaded {len(self.loaded)}/{total} model tensors"]
        if self.missing:
            lines.append(f"  missing (left as initialised): {group_keys(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected (ignored): {group_keys(self.unexpected)}")
        for key, ckpt_shape, model_shape in self.wrong_shape:
            lines.append(f"  wrong shape (skipped): {key}: checkpoint {list(ckpt_shape)} vs model {list(model_shape)}")
        return "\n".join(lines)


def group_keys(keys: list[str], max_listed: int = 4) -> str:
    """Compact key lists: per part, a few keys are listed as 'prefix.{a, b}', more as 'prefix.* (N tensors)'."""
    by_part: dict[str, list[str]] = {}
    for key in keys:
        by_part.setdefault(key.split(".", 1)[0], []).append(key)
    chunks = []
    for group in by_part.values():
        prefix = os.path.commonprefix([k.split(".") for k in group])
        stem = ".".join(prefix)
        if len(group) == 1:
            chunks.append(group[0])
        elif len(group) > max_listed:
            chunks.append(f"{stem}.* ({len(group)} tensors)")
        else:
            rests = ", ".join(k[len(stem) + 1:] for k in group)
            chunks.append(f"{stem}.{{{rests}}}" if stem else rests)
    return "; ".join(chunks)


def load_model_state(model: nn.Module, state_dict: Mapping[str, Any], strict: bool = False,
                     source: str = "checkpoint") -> LoadReport:
    """Load `state_dict` (wrapper prefixes stripped) into the unwrapped `model` and report what happened.

    strict=False (starting from other weights): every tensor whose key and shape match is loaded; wrong-shape
    tensors are skipped, never a crash. strict=True (resume): any missing, unexpected or wrong-shape key raises
    CheckpointError listing them, and nothing is loaded.
    """
    model = unwrap(model)
    state = strip_prefixes(state_dict)
    target = model.state_dict()
    report = LoadReport(source=source)
    loadable = {}
    for key, value in state.items():
        if key not in target:
            report.unexpected.append(key)
        elif not isinstance(value, torch.Tensor) or value.shape != target[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else (type(value).__name__,)
            report.wrong_shape.append((key, shape, tuple(target[key].shape)))
        else:
            loadable[key] = value
            report.loaded.append(key)
    report.missing = [key for key in target if key not in state]
    if strict and not report.clean:
        raise CheckpointError(f"strict load refused, the checkpoint does not match the model:\n{report}")
    model.load_state_dict(loadable, strict=False)
    return report


# --------------------------------------------------------------------------------------------- merging

# The config keys each part's weights depend on: sources contributing parts that share a key must agree.
_PART_DEPENDS = {
    "sr": ("model.sr", "data.mask", "data.lr_height", "data.lr_width"),
    "head": ("model.head", "model.sr.channels", "data.mask", "data.lr_height", "data.lr_width",
             "data.hr_height", "data.hr_width"),
    "recognizer": ("model.recognizer", "data.label_filter"),
    "adapter": ("model.adapter", "model.sr.channels", "data.lr_height"),
}
PART_ORDER = ("sr", "head", "recognizer", "adapter")


def merge_checkpoints(sr: Any = None, recognizer: Any = None, adapter: Any = None, head: Any = None,
                      validate: bool = True) -> dict:
    """Per-module checkpoints (paths or dicts from read_checkpoint; tsr or public) -> one full tsr checkpoint.

    Each source gives only its part's tensors; the sr source gives `sr.*` and also `head.*` unless `head` is
    given. The merged config takes, for each config key a part depends on (its model.<part> section, data
    sizes, mask, label filter), the value from that part's source; sources that disagree on a shared key
    (e.g. the adapter's model.sr.channels vs the sr checkpoint's) are an error. Other keys come from the first
    source. With `validate`, the result is loaded strictly into a model built from the merged config.
    """
    requested = {"sr": sr, "head": head, "recognizer": recognizer, "adapter": adapter}
    sources = {part: src for part, src in requested.items() if src is not None}
    if not sources:
        raise ValueError("merge_checkpoints needs at least one source")
    if sr is not None and head is None:
        sources["head"] = sr                 # a TSRN checkpoint carries its upsampler
    read = {}
    names = {}
    for part, src in sources.items():
        names[part] = str(src) if not isinstance(src, Mapping) else f"{part} checkpoint"
        read[part] = src if isinstance(src, Mapping) else read_checkpoint(src)
    model: dict[str, Any] = {}
    parts = []
    for part in PART_ORDER:
        if part not in read:
            continue
        tensors = {k: v for k, v in strip_prefixes(read[part]["model"]).items() if k.startswith(f"{part}.")}
        if not tensors:
            if part == "head" and head is None:
                continue                     # an sr-only checkpoint: the merged model has no head
            held = sorted({k.split(".", 1)[0] for k in read[part]["model"]})
            raise CheckpointError(f"--{part} {names[part]}: holds no '{part}' part (parts: {held})")
        model.update(tensors)
        parts.append(part)
    config = _merged_config({p: read[p]["config"] for p in parts}, {p: names[p] for p in parts}, parts)
    merged = {"format": FORMAT, "version": VERSION, "model": model, "config": config, "step": 0, "metrics": None,
              "merged_from": {part: names[part] for part in parts}}
    if validate:
        from tsr.models.build import build_model

        load_model_state(build_model(config), model, strict=True, source="merged checkpoint")
    return merged


def _merged_config(configs: dict[str, dict], names: dict[str, str], parts: list[str]) -> dict:
    import copy

    from tsr.config import build_config, get

    resolved = {p: build_config(cfg, source=f"config of {names[p]}") for p, cfg in configs.items()}
    merged = copy.deepcopy(resolved[parts[0]])
    defaults = _defaults()
    # a merged checkpoint starts a new stage: no training settings (nor a learned-weighting part) carry over
    merged["train"] = copy.deepcopy(defaults["train"])
    for part in PART_ORDER:
        if part not in parts:                # e.g. no adapter: its section must not name a type
            merged["model"][part] = copy.deepcopy(defaults["model"][part])
    owner: dict[str, str] = {}
    for part in parts:
        for dotted in _leaf_keys(resolved[part], _PART_DEPENDS[part]):
            value = get(resolved[part], dotted)
            if dotted in owner:
                first = owner[dotted]
                if get(resolved[first], dotted) != value:
                    raise CheckpointError(
                        f"cannot merge: {dotted} is {get(resolved[first], dotted)!r} in {names[first]} ({first}) "
                        f"but {value!r} in {names[part]} ({part}); both parts depend on it")
                continue
            owner[dotted] = part
            section, _, key = dotted.rpartition(".")
            get(merged, section)[key] = copy.deepcopy(value)
    merged["model"]["parts"] = list(parts)
    return build_config(merged, source="merged config")


def _leaf_keys(cfg: dict, dotted_keys: tuple[str, ...]) -> list[str]:
    """'model.sr' -> ['model.sr.type', 'model.sr.blocks', ...]; leaf keys are kept as they are."""
    from tsr.config import get

    leaves = []
    for dotted in dotted_keys:
        value = get(cfg, dotted)
        leaves += [f"{dotted}.{key}" for key in value] if isinstance(value, dict) else [dotted]
    return leaves
