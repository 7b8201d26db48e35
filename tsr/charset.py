"""Label filters and the CTC codec.

`lower`: TextZoom's default: labels lower-cased, characters outside 0-9a-z removed; 36 symbols + CTC blank
= 37 classes, in crnn.pytorch's order (class 0 = blank, class i+1 = alphabet[i]).
`all`: printable ASCII without whitespace (digits, both cases, punctuation); characters outside are removed.
"""
from __future__ import annotations

import string
from typing import Sequence

import torch

ALPHABETS = {
    "lower": string.digits + string.ascii_lowercase,
    "all": string.digits + string.ascii_letters + string.punctuation,
}


def alphabet_for(label_filter: str) -> str:
    if label_filter not in ALPHABETS:
        raise ValueError(f"label filter must be one of {sorted(ALPHABETS)}, got {label_filter!r}")
    return ALPHABETS[label_filter]


def filter_label(label: str, label_filter: str) -> str:
    """The label as the model is trained on it: `lower` lower-cases first; unknown characters are dropped."""
    alphabet = alphabet_for(label_filter)
    if label_filter == "lower":
        label = label.lower()
    return "".join(ch for ch in label if ch in alphabet)


class CTCCodec:
    """Strings <-> CTC targets for one alphabet; blank is class 0."""

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
        self.alphabet = alphabet
        self.index = {ch: i + 1 for i, ch in enumerate(alphabet)}

    @property
    def num_classes(self) -> int:
        return len(self.alphabet) + 1

    def encode(self, labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels -> (targets [sum of lengths] int64 concatenated, lengths [B] int64), as F.ctc_loss takes them."""
        try:
            flat = [self.index[ch] for label in labels for ch in label]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the alphabet {self.alphabet!r}") from None
        return (torch.tensor(flat, dtype=torch.long),
                torch.tensor([len(label) for label in labels], dtype=torch.long))

    def decode_greedy(self, logits: torch.Tensor) -> list[str]:
        """Best path: argmax per step [T,B,C] -> merge repeats -> drop blanks -> one string per batch item."""
        best = logits.argmax(dim=-1).t().tolist()  # B x T
        words = []
        for path in best:
            chars, previous = [], 0
            for cls in path:
                if cls != previous and cls != 0:
                    chars.append(self.alphabet[cls - 1])
                previous = cls
            words.append("".join(chars))
        return words
