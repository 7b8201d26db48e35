"""Per-module checkpoints (tsr or public) -> one full-model tsr checkpoint, with the config keys each part
depends on taken from that part's source."""
from __future__ import annotations

import copy
from typing import Any, Mapping

from tsr.checkpoint.io import FORMAT, VERSION, read_checkpoint
from tsr.checkpoint.report import load_model_state
from tsr.config import build_config, get, load_defaults
from tsr.errors import CheckpointError
from tsr.keys import strip_prefixes
from tsr.models.build import build_model
from tsr.models.parts import PART_NAMES, PARTS


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
    for part in PART_NAMES:
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
        load_model_state(build_model(config), model, strict=True, source="merged checkpoint")
    return merged


def _merged_config(configs: dict[str, dict], names: dict[str, str], parts: list[str]) -> dict:
    resolved = {p: build_config(cfg, source=f"config of {names[p]}") for p, cfg in configs.items()}
    merged = copy.deepcopy(resolved[parts[0]])
    defaults = load_defaults()
    # a merged checkpoint starts a new stage: no training settings (nor a learned-weighting part) carry over
    merged["train"] = copy.deepcopy(defaults["train"])
    for part in PART_NAMES:
        if part not in parts:                # e.g. no adapter: its section must not name a type
            merged["model"][part] = copy.deepcopy(defaults["model"][part])
    owner: dict[str, str] = {}
    for part in parts:
        for dotted in _leaf_keys(resolved[part], PARTS[part].config):
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
    leaves = []
    for dotted in dotted_keys:
        value = get(cfg, dotted)
        leaves += [f"{dotted}.{key}" for key in value] if isinstance(value, dict) else [dotted]
    return leaves
