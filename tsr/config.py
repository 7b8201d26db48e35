"""One config tree: YAML files with `_base_` includes, dotted command-line overrides, checked types.

The schema is `tsr/defaults.yaml`: every valid key is there with a default whose type is the key's type, a list's
items the type of the default's items (`null` = optional and `{}` = a mapping of names: TYPES says what those and
empty lists take). A run's config is the defaults, then each `_base_` file, then the file itself, then `key=value`
overrides (values parsed as YAML, see tsr.config_yaml: YAML 1.2 booleans, duplicate keys are errors;
`train.task_weights.align=2` sets one entry of a mapping and keeps the others, as a child config does). An unknown
key is an error that names the closest valid key, a null only fits a key whose default is null or that NULLABLE
names, and numbers must lie in the key's range (tsr.config_ranges); the resolved tree is saved with every run.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from tsr.config_ranges import RANGES, range_problem
from tsr.config_yaml import bool_from_word, load_yaml, yaml_problem
from tsr.errors import TsrError
from tsr.io import atomic_write_text
from tsr.metrics.protocol import PROTOCOLS

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")

# Keys whose value must be one of a fixed set (checked after merging). Model types, trainable modes and loss
# weightings are asked of their registries (tsr.models.build, tsr.losses.weighting), the only lists of them.
CHOICES = {
    "data.label_filter": ("lower", "all"),
    "train.optimizer": ("adam", "adamw"),
    "train.lr_schedule": ("constant", "cosine", "step"),
    "train.amp": ("auto", "off", "bf16", "fp16"),
    "train.device": ("auto", "cpu", "cuda"),
    "eval.protocol": PROTOCOLS,
}


class ConfigError(TsrError, ValueError):
    """A config file, key or value that is not what tsr expects; the message says which and why."""


def load_defaults() -> dict:
    with open(DEFAULTS_PATH) as f:
        return load_yaml(f.read())


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> dict:
    """Defaults <- `path` (with its `_base_` chain) <- overrides, validated. `path=None` gives the defaults."""
    tree = _read_with_bases(Path(path), chain=()) if path is not None else {}
    return build_config(tree, overrides, source=str(path) if path is not None else "defaults")


def build_config(tree: dict, overrides: Iterable[str] = (), source: str = "config") -> dict:
    """Defaults <- `tree` (e.g. the config stored in a checkpoint) <- overrides, validated."""
    defaults = load_defaults()
    cfg = copy.deepcopy(defaults)
    _merge_checked(cfg, tree, defaults, source=source)
    for item in overrides:
        key, value = parse_override(item)
        key, value = _into_mapping(cfg, defaults, key, value)
        _merge_checked(cfg, _nest(key, value), defaults, source=f"override '{item}'")
    _check_values(cfg)
    return cfg


# an override token: a dotted key of names, then '=' (a path such as runs/a=b/x.pth has a '/' before its '=')
_OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*=")


def is_override(text: str) -> bool:
    """Whether a command-line token is a key=value override ('data.max_len=20')."""
    return bool(_OVERRIDE.match(text))


def parse_override(item: str) -> tuple[str, Any]:
    """'train.lr=1e-4' -> ('train.lr', 1e-4). Values are read as YAML (so 1e-4 -> float, [1,2] -> list, off -> 'off');
    an empty value is an error (write `key=null` to clear an optional key)."""
    if "=" not in item:
        # every command that takes overrides has --config (tsr train, config, eval, bench, profile); --ckpt only eval
        where = (f"a config file goes after --config (--config {item})" if item.lower().endswith((".yaml", ".yml"))
                 else "a file or path goes after its flag (--help lists them)")
        raise ConfigError(f"override '{item}' is not of the form key=value (e.g. train.lr=1e-4); {where}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{item}' has an empty key")
    if not raw.strip():
        raise ConfigError(f"override '{item}' has no value (expected {key}=VALUE; {key}=null clears an optional key)")
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{item}': value is not valid YAML: {yaml_problem(e)}") from None
    # PyYAML (YAML 1.1) reads '1e-4' (no dot) as a string; users mean a number.
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)
    return key, value


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _looks_numeric(text: str) -> bool:
    return bool(_NUMBER.match(text.strip()))


def save_config(cfg: dict, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (a run's record must never be half-written)."""
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))


def get(cfg: dict, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _read_with_bases(path: Path, chain: tuple) -> dict:
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"config file {path} includes itself through _base_: {' -> '.join(map(str, chain + (path,)))}")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; expected a YAML file"
                          + (f" (named in _base_ of {chain[-1]})" if chain else "")
                          + _yaml_files_in(path))
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" + (f" (named in _base_ of {chain[-1]})" if chain else ""))
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a text file (expected UTF-8 YAML)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level, found {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config file {path}: _base_ must be a file name or a list of file names, got {bases!r}")
    merged: dict = {}
    for base in bases:
        _deep_update(merged, _read_with_bases(path.parent / base, chain + (path,)))
    _deep_update(merged, data)
    return merged


def _yaml_files_in(folder: Path, shown: int = 4) -> str:
    """' (it holds a.yaml, b.yaml, ...)' for a folder given where a config file belongs; '' when it holds none."""
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not names:
        return ""
    return f" (it holds {', '.join(names[:shown])}{', ...' if len(names) > shown else ''})"


def _deep_update(dst: dict, src: dict) -> None:
    """src's mappings merge into dst's key by key; an empty mapping in src empties dst's (`task_start: {}` in a
    child config clears its base's)."""
    for key, value in src.items():
        if isinstance(value, dict) and value and isinstance(dst.get(key), dict) and dst[key]:
            _deep_update(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def _into_mapping(cfg: dict, schema: dict, dotted: str, value: Any) -> tuple[str, Any]:
    """An override whose key reaches into a free-form mapping (`train.task_weights.align=2`) sets that one entry:
    -> (the mapping's key, the mapping so far with the entry set), so the config file's other entries stay, as
    they do when a child config names one entry. Any other override -> (dotted, value) unchanged; a whole mapping
    (`train.task_weights={align: 2}`) still replaces the one before it."""
    parts = dotted.split(".")
    node, current = schema, cfg
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node or not isinstance(current, dict):
            break   # an unknown key or one below a value: _merge_checked names it
        node, current = node[part], current.get(part)
        if node == {} and isinstance(current, dict):       # `{}` in the schema: a free-form mapping
            entry, rest = parts[i + 1], parts[i + 2:]
            merged = {**copy.deepcopy(current), entry: _nest(".".join(rest), value) if rest else value}
            return ".".join(parts[:i + 1]), merged
    return dotted, value


def _nest(dotted: str, value: Any) -> dict:
    node: dict = {}
    root = node
    parts = dotted.split(".")
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return root


def _merge_checked(cfg: dict, update: dict, schema: dict, source: str, prefix: str = "") -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"unknown config key '{dotted}' in {source}{_suggest(dotted, schema, prefix)}")
        default = schema[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{dotted}' in {source} must be a mapping, got {value!r}")
            _merge_checked(cfg[key], value, default, source, dotted + ".")
        else:
            cfg[key] = _checked_value(dotted, value, default, source)


# Keys whose default is not null but which also take null (train.feature_grad_start: null = the adapter's losses
# never reach the SR network; defaults.yaml says what null means for each)
NULLABLE = frozenset({"train.feature_grad_start"})

# What the keys take whose default does not show it: null (optional), [] or {} defaults. A type, [type] (a list of
# them) or {str: type} (a mapping of names to them). Every other key takes its default's type, and a list key the
# type of its default's items. Without these a null-default key took any value and a list any items, which passed
# here and failed later as a Python traceback inside the run folder (train.init=5, data.test_splits=[1]).
TYPES = {
    "model.adapter.type": str,
    "eval.recognizer": str,
    "train.init": str,
    "train.val_limit": int,
    "train.content_layers": [str],
    "train.lr_milestones": [int],
    "train.task_weights": {str: float},
    "train.task_start": {str: int},
    "train.lr_scale": {str: float},
}


def value_type(dotted: str, default: Any) -> Any:
    """The type `dotted` takes, in the notation of TYPES: declared there, or read off the default."""
    if dotted in TYPES:
        return TYPES[dotted]
    if isinstance(default, list) and default:
        return [type(default[0])]
    if default is None or default == [] or default == {}:
        raise KeyError(f"config key '{dotted}' has a default ({default!r}) that shows no type; declare it in TYPES")
    return type(default)


def _checked_value(dotted: str, value: Any, default: Any, source: str) -> Any:
    if value is None:
        if default is None or dotted in NULLABLE:
            return None
        raise ConfigError(f"config key '{dotted}' in {source} must be {type(default).__name__}, got null (only keys "
                          "whose default is null are optional)")
    kind, given = value_type(dotted, default), value
    if isinstance(kind, list):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]   # data.train_roots=/x: one value for a list key is the list of it
        if not isinstance(value, list):
            raise ConfigError(f"config key '{dotted}' in {source} must be list, got {type(value).__name__} {value!r}")
        items = [(f"item {i}", item) for i, item in enumerate(value)]
        what = f"a list of {kind[0].__name__}"
    elif isinstance(kind, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{dotted}' in {source} must be dict, got {type(value).__name__} {value!r}")
        (key_kind, item_kind), = kind.items()
        bad_keys = [k for k in value if not isinstance(k, key_kind)]
        if bad_keys:
            raise ConfigError(f"config key '{dotted}' in {source} must be a mapping of names, got {value!r} (not a "
                              f"name: {bad_keys[0]!r})")
        items = list(value.items())
        what, kind = f"a mapping of names to {item_kind.__name__}", [item_kind]
    else:
        checked = _scalar(value, kind)
        if checked is _WRONG:
            raise ConfigError(f"config key '{dotted}' in {source} must be {kind.__name__}, got {type(value).__name__} "
                              f"{value!r}")
        return checked
    for where, item in items:
        if _scalar(item, kind[0]) is _WRONG:
            detail = (f"{given!r} ({where}: {type(item).__name__} {item!r})" if value is given  # not wrapped above
                      else f"{type(item).__name__} {item!r}")
            raise ConfigError(f"config key '{dotted}' in {source} must be {what}, got {detail}")
    # items as written: an int where a float is expected is a number, kept so messages and config.yaml show the 1
    return copy.deepcopy(value)


_WRONG = object()


def _scalar(value: Any, kind: type) -> Any:
    """`value` as `kind` (yes/no/on/off -> bool, an int -> float), or _WRONG."""
    if kind is bool and bool_from_word(value) is not None:   # yes / no / on / off, as YAML 1.1 reads them
        return bool_from_word(value)
    if isinstance(value, bool) and kind is not bool:
        return _WRONG
    if kind is float and isinstance(value, int):
        return float(value)
    return value if isinstance(value, kind) else _WRONG


def _suggest(dotted: str, schema: dict, prefix: str) -> str:
    valid = [f"{prefix}{k}" for k in schema]
    close = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (valid keys here: {', '.join(valid)})"


def _check_values(cfg: dict) -> None:
    """The one check of values after merging: names against their choices (CHOICES, the model and weighting
    registries), then numbers against tsr.config_ranges.RANGES."""
    # imported here: both modules import this one (ConfigError)
    from tsr.losses.weighting import WEIGHTINGS
    from tsr.models.build import model_choices

    choices = {**CHOICES, **model_choices(cfg), "train.weighting": tuple(WEIGHTINGS)}
    for dotted, allowed in choices.items():
        try:
            value = get(cfg, dotted)
        except KeyError:
            continue
        if value not in allowed:
            raise ConfigError(f"config key '{dotted}' must be one of {list(allowed)}, got {value!r}")
    for dotted in RANGES:
        problem = range_problem(dotted, get(cfg, dotted))
        if problem:
            raise ConfigError(problem)
