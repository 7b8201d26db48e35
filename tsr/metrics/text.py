"""Text metrics, compared as TextZoom does: lower-case, only 0-9a-z kept (so case, punctuation and accents never
count as errors)."""
from __future__ import annotations

import re

import editdistance

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def normalize_for_accuracy(text: str) -> str:
    """'Hello, World-2!' -> 'helloworld2'."""
    return _NOT_ALNUM.sub("", text.lower())


def word_correct(pred: str, target: str) -> bool:
    """True when the two words are equal after `normalize_for_accuracy`."""
    return normalize_for_accuracy(pred) == normalize_for_accuracy(target)


def normalized_edit_distance(pred: str, target: str) -> float:
    """Levenshtein distance / the longer length, on normalised strings: in [0, 1], 0.0 when both are empty."""
    pred, target = normalize_for_accuracy(pred), normalize_for_accuracy(target)
    longest = max(len(pred), len(target))
    return editdistance.eval(pred, target) / longest if longest else 0.0
