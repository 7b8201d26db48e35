"""The one place where public checkpoint layouts map into tsr's layout (keys, and a config carrying the
architecture inferred from the tensors). Adding a public format: its name in tsr/public_formats.py (torch-free: the
choices of `tsr convert --from`), a detector line in `detect_public_format`, a converter (object -> tsr checkpoint
dict) registered in CONVERTERS under that name.

- TextZoom TSRN (`{"state_dict_G": ...}`): `block1` .. `block{blocks+2}`, `tps.*`, `stn_head.*` are the
  backbone's keys unchanged; the upsampler `block{blocks+3}.{i}.conv.*` becomes the head's `upsample.{i}.conv.*`
  and its last conv `block{blocks+3}.{stages}.*` becomes `conv_out.*`.
- crnn.pytorch CRNN (a plain state dict `cnn.conv0.*` .. `rnn.1.embedding.*`): kept as it is.
- ASTER (aster.pytorch's `demo.pth.tar`: {'state_dict': ..., 'epoch', 'best_res', ...}, or the bare state dict)
  and MORAN (MORAN_v2's `moran.pth`, saved from DataParallel): evaluation-only recognizers, keys kept as they are
  (tsr.models.aster / tsr.models.moran use their authors' module names), checked key by key and shape by shape
  against the model so a wrong layout fails with one line naming what differs.
- IMDN (Zheng222/IMDN's `IMDN_x2.pth`, a plain state dict `fea_conv.*`, `IMDB{i}.*`, `c.0.*`, `LR_conv.*`,
  `upsampler.0.*`): the backbone's keys unchanged (model.sr.type imdn), `upsampler.0.*` becomes the shuffle
  head's `conv_out.*`.

The `*_to_part(s)` functions return part-local keys ("sr", "head", "recognizer"); `to_tsr` adds the part
prefixes and the config.
A `module.` prefix (DataParallel / DDP saves) is stripped from every key.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

from tsr.config import build_config, load_defaults
from tsr.charset import ALPHABETS
from tsr.errors import CheckpointError
from tsr.keys import strip_key, strip_prefixes
from tsr.models.aster import Aster
from tsr.models.moran import Moran
from tsr.public_formats import ASTER, CRNN_PYTORCH, IMDN, MORAN, TEXTZOOM_TSRN

TSR = "tsr"
FORMAT = TSR      # the "format" value of tsr's own checkpoints
VERSION = 1       # the tsr checkpoint layout version this code writes and reads

_BLOCK_KEY = re.compile(r"^block(\d+)\.(.+)$")
_STN_PREFIXES = ("tps.", "stn_head.")
_CRNN_REQUIRED = ("cnn.conv0.weight", "rnn.1.embedding.weight")
# evaluation-only recognizers: format -> (the public file, keys only its checkpoints hold once `module.` is
# stripped, the network at its public size)
_JUDGES = {ASTER: ("demo.pth.tar (aster.pytorch)", ("encoder.layer0.0.weight", "decoder.decoder.fc.weight"), Aster),
           MORAN: ("moran.pth (MORAN_v2)", ("MORN.cnn.1.weight", "ASRN.attentionL2R.generator.weight"), Moran)}


def _tsrn_state_dict(obj: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """A TextZoom checkpoint dict or its bare `state_dict_G` -> the state dict with `module.` stripped."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a TextZoom checkpoint (a dict with 'state_dict_G'), "
                              f"got {type(obj).__name__}")
    if "state_dict_G" in obj:
        obj = obj["state_dict_G"]
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{source}: 'state_dict_G' should be a state dict, got {type(obj).__name__}")
    return strip_prefixes(obj)


def _block_indices(state_dict: Mapping[str, Any]) -> list[int]:
    return sorted({int(m.group(1)) for m in map(_BLOCK_KEY.match, state_dict) if m})


def infer_textzoom_tsrn_options(state_dict_G: Mapping[str, Any], source: str = "checkpoint") -> dict:
    """Architecture of a TextZoom TSRN from its keys and shapes.

    Returns dict(in_channels, channels, blocks, stn, stages, out_channels); TextZoom's mask input means
    in_channels == 4 (RGB + mask), without mask 3. Accepts the checkpoint dict or its `state_dict_G`.
    """
    sd = _tsrn_state_dict(state_dict_G, source)
    indices = _block_indices(sd)
    expected = "a TextZoom TSRN state_dict_G (keys block1.0.weight, block2.conv1.weight, ..., block8.1.weight)"
    if "block1.0.weight" not in sd or len(indices) < 4 or indices != list(range(1, indices[-1] + 1)):
        raise CheckpointError(f"{source}: expected {expected}; found keys {preview_keys(sd)}")
    head = indices[-1]
    blocks = head - 3
    missing = [f"block{i}.conv1.weight" for i in range(2, blocks + 2) if f"block{i}.conv1.weight" not in sd]
    missing += [k for k in (f"block{head - 1}.0.weight",) if k not in sd]
    stages = 0
    while f"block{head}.{stages}.conv.weight" in sd:
        stages += 1
    if f"block{head}.{stages}.weight" not in sd:
        missing.append(f"block{head}.{stages}.weight")
    if missing:
        raise CheckpointError(f"{source}: expected {expected}; missing {', '.join(missing)}")
    first, last = (_conv_weight(sd, key, source) for key in ("block1.0.weight", f"block{head}.{stages}.weight"))
    return {
        "in_channels": int(first.shape[1]),
        "channels": int(first.shape[0]),
        "blocks": blocks,
        "stn": any(k.startswith(_STN_PREFIXES) for k in sd),
        "stages": stages,
        "out_channels": int(last.shape[0]),
    }


def _conv_weight(sd: Mapping, key: str, source: str) -> torch.Tensor:
    """sd[key], checked to be a conv weight [out, in, kh, kw]: the architecture is read off its shape."""
    value = sd[key]
    if not isinstance(value, torch.Tensor) or value.dim() != 4:
        what = f"a tensor of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise CheckpointError(f"{source}: {key} should be a conv weight [out, in, kh, kw], got {what}")
    return value


def textzoom_tsrn_to_parts(state_dict_G: Mapping[str, Any], source: str = "checkpoint") -> dict[str, dict]:
    """TextZoom `state_dict_G` (or the checkpoint dict holding it) -> {"sr": backbone_state, "head": head_state}.

    The states load strictly into TSRNBackbone(**options) and PixelShuffleHead(channels, out_channels, stages)
    built from `infer_textzoom_tsrn_options`.
    """
    sd = _tsrn_state_dict(state_dict_G, source)
    options = infer_textzoom_tsrn_options(sd, source)
    head_block = f"block{options['blocks'] + 3}."
    last = options["stages"]
    sr: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in sd.items():
        if key.startswith(head_block):
            index, _, rest = key[len(head_block):].partition(".")
            if not index.isdigit() or not rest:
                unknown.append(key)
            elif int(index) == last:
                head[f"conv_out.{rest}"] = value
            elif int(index) < last and rest.startswith("conv."):
                head[f"upsample.{index}.{rest}"] = value
            else:
                unknown.append(key)
        elif _BLOCK_KEY.match(key) or key.startswith(_STN_PREFIXES):
            sr[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{source}: keys that are not part of a TextZoom TSRN: {preview_keys(unknown)}")
    return {"sr": sr, "head": head}


def crnn_pytorch_to_part(state_dict: Mapping[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """crnn.pytorch CRNN state dict -> recognizer state (same keys, `module.` stripped), checked to be a CRNN."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{source}: expected a crnn.pytorch CRNN state dict, got {type(state_dict).__name__}")
    sd = strip_prefixes(state_dict)
    missing = [k for k in _CRNN_REQUIRED if k not in sd]
    if missing:
        raise CheckpointError(f"{source}: expected a crnn.pytorch CRNN state dict with keys "
                              f"{', '.join(_CRNN_REQUIRED)} (cnn.conv0 .. rnn.1.embedding); missing "
                              f"{', '.join(missing)}; found keys {preview_keys(sd)}")
    return sd


def _judge_state_dict(obj: Any) -> Optional[dict]:
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


def _detect_judge(obj: Any) -> Optional[str]:
    """"aster" | "moran" when `obj` (a loaded file) holds that recognizer's keys, else None."""
    state = _judge_state_dict(obj)
    if state is not None:
        for kind, (_, signature, _) in _JUDGES.items():
            if any(key in state for key in signature):
                return kind
    return None


def judge_to_part(obj: Any, kind: str, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A loaded public ASTER / MORAN file (`kind`) -> its recognizer state (part-local keys), checked key by key
    and shape by shape against the model; CheckpointError (one line) on any difference."""
    public_file, signature, network = _JUDGES[kind]
    state, found = _judge_state_dict(obj), _detect_judge(obj)
    if state is None or found != kind:
        what = (f"it holds {found.upper()}'s keys; use {found}:PATH or --from {found}" if found
                else f"it holds none of its keys ({', '.join(signature)})")
        raise CheckpointError(f"{source}: expected {kind.upper()}'s {public_file}, but {what}")
    expected = {k: tuple(v.shape) for k, v in network().state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(getattr(state[k], 'shape', ()))} (expected {list(expected[k])})" for k in expected
             if k in state and tuple(getattr(state[k], "shape", ())) != expected[k]]
    if missing or unexpected or wrong:
        problems = [f"{label} {len(keys)} (e.g. {', '.join(keys[:2])})"
                    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                    if keys]
        raise CheckpointError(f"{source}: not the layout of {kind.upper()}'s {public_file}: " + "; ".join(problems))
    return state


def _fill_num_batches_tracked(state: dict) -> dict:
    """Checkpoints from PyTorch < 0.4 (e.g. crnn.pytorch's published crnn.pth) have BN layers without
    `num_batches_tracked`; it only matters for BN with momentum=None, so 0 is the honest value to add."""
    for key in [k for k in state if k.endswith(".running_mean")]:
        state.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return state


def _converted(model: dict, config: dict, source_format: str) -> dict:
    return {"format": FORMAT, "version": VERSION, "model": model, "step": 0, "metrics": None,
            "config": build_config(config, source=f"{source_format} conversion"), "converted_from": source_format}


def _from_textzoom(obj: Mapping, path: Path) -> dict:
    options = infer_textzoom_tsrn_options(obj, source=str(path))
    if options["in_channels"] not in (3, 4) or options["out_channels"] != options["in_channels"]:
        raise CheckpointError(f"{path}: TextZoom TSRN with {options['in_channels']} input and "
                              f"{options['out_channels']} output channels; tsr expects 3 -> 3 (RGB) or 4 -> 4 (mask)")
    parts = textzoom_tsrn_to_parts(obj, source=str(path))
    model = {f"{part}.net.{key}": value for part in ("sr", "head")
             for key, value in _fill_num_batches_tracked(dict(parts[part])).items()}
    defaults = load_defaults()
    lr_h, lr_w = defaults["data"]["lr_height"], defaults["data"]["lr_width"]
    config = {"data": {"mask": options["in_channels"] == 4, "hr_height": lr_h * 2 ** options["stages"],
                       "hr_width": lr_w * 2 ** options["stages"]},
              "model": {"parts": ["sr", "head"],
                        "sr": {"blocks": options["blocks"], "channels": options["channels"], "stn": options["stn"]},
                        "head": {"stages": options["stages"]}}}
    return _converted(model, config, TEXTZOOM_TSRN)


def _from_crnn_pytorch(obj: Mapping, path: Path) -> dict:
    state = _fill_num_batches_tracked(dict(crnn_pytorch_to_part(obj, source=str(path))))
    for key in ("rnn.1.embedding.weight", "rnn.0.rnn.weight_hh_l0", "cnn.conv0.weight"):
        # the architecture is read off these shapes
        if not isinstance(state.get(key), torch.Tensor) or state[key].dim() < 2:
            found = "missing" if key not in state else \
                f"found {type(state[key]).__name__} {list(getattr(state[key], 'shape', ()))}"
            raise CheckpointError(f"{path}: crnn.pytorch state dict without the expected tensor '{key}' ({found})")
    num_classes = int(state["rnn.1.embedding.weight"].shape[0])
    hidden = int(state["rnn.0.rnn.weight_hh_l0"].shape[1])
    in_channels = int(state["cnn.conv0.weight"].shape[1])
    by_classes = {len(alphabet) + 1: name for name, alphabet in ALPHABETS.items()}
    if num_classes not in by_classes:
        raise CheckpointError(f"{path}: CRNN with {num_classes} classes; tsr's alphabets give "
                              + ", ".join(f"{n} ({name})" for n, name in sorted(by_classes.items())))
    if in_channels != 1:
        raise CheckpointError(f"{path}: CRNN with {in_channels} input channels; tsr's CRNN reads grey images (1)")
    config = {"data": {"label_filter": by_classes[num_classes]},
              "model": {"parts": ["recognizer"], "recognizer": {"hidden": hidden}}}
    return _converted({f"recognizer.net.{k}": v for k, v in state.items()}, config, CRNN_PYTORCH)


def _from_judge(kind: str, obj: Mapping, path: Path) -> dict:
    """An ASTER / MORAN file -> a frozen recognizer-only model (a judge: evaluation only)."""
    state = judge_to_part(obj, kind, str(path))
    config = {"model": {"parts": ["recognizer"], "recognizer": {"type": kind, "trainable": "none"}}}
    return _converted({f"recognizer.net.{k}": v for k, v in state.items()}, config, kind)


_IMDN_REQUIRED = ("fea_conv.weight", "IMDB1.c1.weight", "c.0.weight", "LR_conv.weight", "upsampler.0.weight")


def _from_imdn(obj: Mapping, path: Path) -> dict:
    """IMDN's official checkpoint (Zheng222/IMDN, `IMDN_x2.pth`: the state dict of `IMDN(in_nc, nf, num_modules,
    out_nc, upscale)`) -> sr (type imdn: the official module names, keys unchanged) + head (type shuffle: the
    upsampler's conv `upsampler.0.*` is `conv_out.*`); nf, num_modules, in_nc and the scale come from the shapes."""
    sd = strip_prefixes(obj)
    missing = [k for k in _IMDN_REQUIRED if k not in sd]
    if missing:
        raise CheckpointError(f"{path}: expected IMDN's official state dict (keys {', '.join(_IMDN_REQUIRED)}, ...); "
                              f"missing {', '.join(missing)}; found keys {preview_keys(sd)}")
    channels, in_channels = (int(n) for n in sd["fea_conv.weight"].shape[:2])
    blocks = 0
    while f"IMDB{blocks + 1}.c1.weight" in sd:
        blocks += 1
    expanded = int(sd["upsampler.0.weight"].shape[0])
    scale = round((expanded / in_channels) ** 0.5)
    if in_channels not in (3, 4) or scale * scale * in_channels != expanded or scale & (scale - 1) or scale < 2:
        raise CheckpointError(f"{path}: IMDN with {in_channels} input channels and an upsampler to {expanded} "
                              f"channels (x{expanded / in_channels:g} pixels); tsr converts 3 or 4 channels at x2 or x4 "
                              f"(its heads upsample by powers of 2), not x{scale}")
    model = {f"sr.net.{k}": v for k, v in sd.items() if not k.startswith("upsampler.")}
    model.update({f"head.net.conv_out.{k[len('upsampler.0.'):]}": v for k, v in sd.items()
                  if k.startswith("upsampler.0.")})
    defaults = load_defaults()
    lr_h, lr_w = defaults["data"]["lr_height"], defaults["data"]["lr_width"]
    config = {"data": {"mask": in_channels == 4, "hr_height": lr_h * scale, "hr_width": lr_w * scale},
              "model": {"parts": ["sr", "head"],
                        "sr": {"type": "imdn", "channels": channels, "blocks": blocks, "stn": False},
                        "head": {"type": "shuffle", "stages": scale.bit_length() - 1, "bicubic_skip": False}}}
    return _converted(model, config, IMDN)


# public format -> converter (loaded object, path) -> tsr checkpoint dict with "converted_from"
CONVERTERS: dict[str, Callable[[Mapping, Path], dict]] = {
    TEXTZOOM_TSRN: _from_textzoom,
    CRNN_PYTORCH: _from_crnn_pytorch,
    ASTER: partial(_from_judge, ASTER),
    MORAN: partial(_from_judge, MORAN),
    IMDN: _from_imdn,
}


def to_tsr(obj: Mapping, kind: str, path: Path) -> dict:
    """A loaded public checkpoint of format `kind` (a CONVERTERS key) -> the tsr layout: keys `<part>.net.*`,
    a resolved config carrying the inferred architecture, step 0 and `"converted_from": kind`."""
    return CONVERTERS[kind](obj, path)


def detect_public_format(obj: Any) -> str | None:
    """What a loaded checkpoint object is: "tsr" (dict with format == "tsr"), "textzoom-tsrn" (dict with
    'state_dict_G', or a bare TSRN state dict), "crnn-pytorch" (state dict with cnn.conv0.weight), "aster" /
    "moran" (their keys, bare or under 'state_dict'), "imdn" (IMDB1.c1.weight), else None."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("format") == TSR:
        return TSR
    if "state_dict_G" in obj:
        return TEXTZOOM_TSRN
    keys = {strip_key(k) for k in obj if isinstance(k, str)}   # as the converters read them (DDP, torch.compile)
    if "block1.0.weight" in keys:
        return TEXTZOOM_TSRN
    if "cnn.conv0.weight" in keys:
        return CRNN_PYTORCH
    if "IMDB1.c1.weight" in keys:
        return IMDN
    return _detect_judge(obj)


def preview_keys(keys, limit: int = 6) -> str:
    """A short listing of a key set for error messages."""
    keys = list(keys)
    shown = ", ".join(map(str, keys[:limit]))
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)} keys)" if keys else "none"
