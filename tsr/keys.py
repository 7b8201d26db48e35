"""State-dict keys without wrapper prefixes. DDP/DataParallel save `module.<key>`, torch.compile
`_orig_mod.<key>`; tsr's own checkpoints never carry them, but peers' and public ones do."""
from __future__ import annotations

from typing import Any, Mapping

from tsr.errors import CheckpointError

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_key(key: str) -> str:
    """'module._orig_mod.sr.net.x' -> 'sr.net.x': leading wrapper prefixes, any nesting, plus `_orig_mod.`
    segments further in (a part compiled on its own saves `sr.net._orig_mod.x`)."""
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key.replace("._orig_mod.", ".")


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict saved through DDP / torch.compile wrappers -> the same tensors under the plain keys."""
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"state dict key {key!r} is not a string: not a state dict of parameter names")
        plain = strip_key(key)
        if plain in out:
            raise CheckpointError(f"state dict holds both '{key}' and another key that also means '{plain}'")
        out[plain] = value
    return out
