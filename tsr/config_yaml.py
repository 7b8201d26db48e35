"""How tsr reads YAML (config files and `key=value` override values): safe, strict about duplicates, and with the
booleans of YAML 1.2.

PyYAML follows YAML 1.1, where `on`, `off`, `yes`, `no` (and `y`, `n` in some readers) are booleans; tsr's
documented values include strings such as `train.amp: off`, which would arrive as False. Here only
true/false are booleans; `bool_from_word` then turns `yes/no/on/off` into booleans where the schema expects one,
so both readings of such a word land where the user meant. A key written twice in one mapping is an error
(PyYAML silently keeps the last one).
"""
from __future__ import annotations

import re
from typing import Any, Optional

import yaml

_BOOL_TAG = "tag:yaml.org,2002:bool"
_WORDS = {"yes": True, "on": True, "true": True, "no": False, "off": False, "false": False}


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key {key!r} (first on line {seen[key].line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


# a copy of SafeLoader's resolvers without YAML 1.1's word booleans, plus YAML 1.2's true/false
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """YAML text -> Python objects (safe constructors only). Raises yaml.YAMLError, e.g. for a duplicate key."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def bool_from_word(value: Any) -> Optional[bool]:
    """'on' / 'Off' / 'yes' / 'no' / 'true' / 'false' -> the bool it spells; anything else -> None."""
    return _WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and on which line ('duplicate key 'lr' (first on line 2), line 3')."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return " ".join(f"{problem}" .split()) + (f", line {mark.line + 1}" if mark is not None else "")
