"""The one place where public checkpoint layouts map into tsr's key space.

- TextZoom TSRN (`{"state_dict_G": ...}`): `block1` .. `block{blocks+2}`, `tps.*`, `stn_head.*` are the
  backbone's keys unchanged; the upsampler `block{blocks+3}.{i}.conv.*` becomes the head's `upsample.{i}.conv.*`
  and its last conv `block{blocks+3}.{stages}.*` becomes `conv_out.*`.
- crnn.pytorch CRNN (a plain state dict `cnn.conv0.*` .. `rnn.1.embedding.*`): kept as it is.

Functions here return part-local keys ("sr", "head", "recognizer"); the wrapper adds the part prefixes.
A `module.` prefix (DataParallel / DDP saves) is stripped from every key.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from tsr.errors import CheckpointError
from tsr.keys import strip_prefixes

TEXTZOOM_TSRN = "textzoom-tsrn"
CRNN_PYTORCH = "crnn-pytorch"
TSR = "tsr"

_BLOCK_KEY = re.compile(r"^block(\d+)\.(.+)$")
_STN_PREFIXES = ("tps.", "stn_head.")
_CRNN_REQUIRED = ("cnn.conv0.weight", "rnn.1.embedding.weight")


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
        raise CheckpointError(f"{source}: expected {expected}; found keys {_preview(sd)}")
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
    first = sd["block1.0.weight"]
    return {
        "in_channels": int(first.shape[1]),
        "channels": int(first.shape[0]),
        "blocks": blocks,
        "stn": any(k.startswith(_STN_PREFIXES) for k in sd),
        "stages": stages,
        "out_channels": int(sd[f"block{head}.{stages}.weight"].shape[0]),
    }


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
        raise CheckpointError(f"{source}: keys that are not part of a TextZoom TSRN: {_preview(unknown)}")
    return {"sr": sr, "head": head}


def parts_to_textzoom_tsrn(sr_state: Mapping[str, Any], head_state: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `textzoom_tsrn_to_parts`: tsr backbone + head states -> a TextZoom `state_dict_G`."""
    sr_state = strip_prefixes(sr_state)
    indices = _block_indices(sr_state)
    if not indices:
        raise ValueError("sr_state has no block* keys; expected a TSRNBackbone state dict")
    head_block = f"block{indices[-1] + 1}"
    head_state = strip_prefixes(head_state)
    out = dict(sr_state)
    stages = len({k.split(".")[1] for k in head_state if k.startswith("upsample.")})
    for key, value in head_state.items():
        if key.startswith("upsample."):
            out[f"{head_block}.{key[len('upsample.'):]}"] = value
        elif key.startswith("conv_out."):
            out[f"{head_block}.{stages}.{key[len('conv_out.'):]}"] = value
        else:
            raise ValueError(f"head_state key {key!r} is not a PixelShuffleHead key (upsample.*, conv_out.*)")
    return out


def crnn_pytorch_to_part(state_dict: Mapping[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """crnn.pytorch CRNN state dict -> recognizer state (same keys, `module.` stripped), checked to be a CRNN."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{source}: expected a crnn.pytorch CRNN state dict, got {type(state_dict).__name__}")
    sd = strip_prefixes(state_dict)
    missing = [k for k in _CRNN_REQUIRED if k not in sd]
    if missing:
        raise CheckpointError(f"{source}: expected a crnn.pytorch CRNN state dict with keys "
                              f"{', '.join(_CRNN_REQUIRED)} (cnn.conv0 .. rnn.1.embedding); missing "
                              f"{', '.join(missing)}; found keys {_preview(sd)}")
    return sd


def detect_public_format(obj: Any) -> str | None:
    """What a loaded checkpoint object is: "tsr" (dict with format == "tsr"), "textzoom-tsrn" (dict with
    'state_dict_G', or a bare TSRN state dict), "crnn-pytorch" (state dict with cnn.conv0.weight), else None."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("format") == TSR:
        return TSR
    if "state_dict_G" in obj:
        return TEXTZOOM_TSRN
    keys = {k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k for k in obj}
    if "block1.0.weight" in keys:
        return TEXTZOOM_TSRN
    if "cnn.conv0.weight" in keys:
        return CRNN_PYTORCH
    return None


def _preview(keys, limit: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(map(str, keys[:limit]))
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)} keys)" if keys else "none"
