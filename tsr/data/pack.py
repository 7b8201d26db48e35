"""Users' own image folders -> TextZoom-format LMDBs (the writer synth uses): paired LR/HR folders, or HR alone with
LR made by tsr's degradations (tsr.data.degrade). Labels from a tsv (`file<TAB>label`) or from file names.

Pairs are matched by file stem (a.png in --hr with a.jpg in --lr). A label from a file name is the part after
the last '_' of its stem ('0042_hello.png' -> 'hello'; 'hello.png' -> 'hello')."""
from __future__ import annotations

import codecs
import math
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from tsr.data.degrade import DEGRADATIONS, degrade
from tsr.data.lmdb_writer import LMDBSet, check_target, png_bytes
from tsr.data.user_images import open_rgb
from tsr.errors import DataError
from tsr.outputs import check_apart

LEVELS = tuple(DEGRADATIONS)
MIXED = "mixed"  # each image draws its level, as synth's train split


def read_labels(path: Path) -> dict[str, str]:
    """tsv 'file<TAB>label' per line (an optional header 'file<TAB>label' / 'file<TAB>text') -> {file name: label};
    also keyed by stem, so 'a' and 'a.png' both match."""
    labels: dict[str, str] = {}
    for number, line in enumerate(_utf8_text(Path(path)).splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"--labels {path} line {number}: expected 'file<TAB>label', got {line!r}")
        name, label = line.split("\t", 1)
        if number == 1 and name.strip().lower() == "file":
            continue
        labels[name.strip()] = label
        labels.setdefault(Path(name.strip()).stem, label)
    return labels


def _utf8_text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark, as spreadsheet programs write, dropped: it would be read
    as part of the first file name); DataError naming the line that is not UTF-8."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        number = len((data[:e.start].decode("utf-8") + "end").splitlines())   # counted as read_labels counts
        raise DataError(f"--labels {path} line {number}: byte {data[e.start]:#04x} is not UTF-8 text; save the file "
                        f"as UTF-8") from None


def label_from_name(file: Path) -> str:
    return file.stem.rsplit("_", 1)[-1]


def pair_files(hr_files: list[Path], lr_dir: Optional[Path]) -> list[tuple[Path, Optional[Path]]]:
    """HR files -> (hr, lr or None) matched by stem; an HR without its LR is an error naming it."""
    if lr_dir is None:
        return [(f, None) for f in hr_files]
    from tsr.commands.sr import list_images

    _one_per_stem(hr_files, "--hr")
    lr_files = list_images(lr_dir, "--lr")
    _one_per_stem(lr_files, "--lr")
    lr_by_stem = {f.stem: f for f in lr_files}
    missing = [f.name for f in hr_files if f.stem not in lr_by_stem]
    if missing:
        raise DataError(f"--lr {lr_dir} lacks a partner for {len(missing)} HR image(s), e.g. {missing[:3]} "
                        f"(pairs are matched by file stem)")
    return [(f, lr_by_stem[f.stem]) for f in hr_files]


def _one_per_stem(files: list[Path], flag: str) -> None:
    """DataError naming two files of `flag` with one stem (x.png and x.jpg): pairing by stem could not tell which
    is meant, and would pair one and drop or repeat the other."""
    first: dict[str, Path] = {}
    for f in files:
        if f.stem in first:
            raise DataError(f"{flag} holds {first[f.stem]} and {f}, two files with the stem {f.stem!r}; pairs are "
                            f"matched by file stem, so each stem must be one file: rename or remove one")
        first[f.stem] = f


def split_pairs(pairs: list, test_fraction: float, seed: int) -> tuple[list, list]:
    """-> (train, test): round(len * test_fraction) pairs drawn with `seed` go to test, order otherwise kept."""
    if not 0 <= test_fraction < 1:
        raise DataError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    n_test = int(round(len(pairs) * test_fraction))
    if test_fraction and not 0 < n_test < len(pairs):   # an empty split: an LMDB that training refuses
        raise DataError(_fraction_hint(test_fraction, len(pairs), n_test))
    chosen = set(np.random.default_rng(seed).permutation(len(pairs))[:n_test].tolist())
    return ([p for i, p in enumerate(pairs) if i not in chosen], [p for i, p in enumerate(pairs) if i in chosen])


def _fraction_hint(fraction: float, n: int, n_test: int) -> str:
    if n < 2:
        return f"--test-fraction {fraction} needs at least 2 images (one per split), got {n}: pack without it"
    # rounded inwards to 4 decimals, so that both ends leave at least one image in each split
    low, high = math.ceil(1e4 / n) / 1e4, math.floor(1e4 * (n - 1) / n) / 1e4
    use = f"{low:g}" if low == high else f"a fraction from {low:g} to {high:g}"
    return (f"--test-fraction {fraction} puts {n_test} of the {n} images in the test split and {n - n_test} in "
            f"train; each split needs at least one: use {use}")


def labelled(pairs: list, labels: Optional[dict[str, str]]) -> list[tuple[Path, Optional[Path], str]]:
    """(hr, lr) pairs -> (hr, lr, label), from `labels` or the file names; every missing label is found before any
    image is read."""
    found = [(hr, lr, label_from_name(hr) if labels is None else labels.get(hr.name, labels.get(hr.stem)))
             for hr, lr in pairs]
    missing = [hr.name for hr, _, label in found if label is None]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataError(f"--labels has no label for {', '.join(missing[:3])}{more}")
    return found


def records(items: list, level: str, seed: int, scale: int = 2) -> Iterator[tuple[bytes, bytes, str]]:
    """(hr bytes, lr bytes, label) per (hr, lr, label): each file decoded as a viewer shows it (upright, 8-bit,
    transparency flattened: tsr.data.user_images) and stored as an RGB PNG, as TextZoom stores its images, so that
    a file PIL cannot read is an error here, not a corrupt record in training; an LR made from HR by `level`
    (seeded per index: the same seed gives the same bytes)."""
    for index, (hr, lr, label) in enumerate(items):
        high = open_rgb(hr, "--hr")
        if lr is not None:
            low = open_rgb(lr, "--lr")
        else:
            rng = np.random.default_rng([seed, index])
            chosen = LEVELS[rng.integers(len(LEVELS))] if level == MIXED else level
            low = degrade(high, chosen, rng, scale)
        yield png_bytes(high), png_bytes(low), label


def pack(hr_dir, out, lr_dir=None, labels_path=None, level: str = MIXED, test_fraction: float = 0.0,
         seed: int = 0, overwrite: bool = False) -> dict[str, int]:
    """Write OUT (one LMDB) or, with test_fraction > 0, OUT/train and OUT/test/all, all or nothing;
    -> {lmdb path: records}."""
    from tsr.commands.sr import list_images

    if level not in (*LEVELS, MIXED):
        raise DataError(f"--degrade must be one of {[*LEVELS, MIXED]}, got {level!r}")
    pairs = labelled(pair_files(list_images(hr_dir, "--hr"), Path(lr_dir) if lr_dir else None),
                     read_labels(Path(labels_path)) if labels_path else None)
    out = check_apart(out, "--out", {"--hr": hr_dir, "--lr": lr_dir, "--labels": labels_path})
    if test_fraction:
        train, test = split_pairs(pairs, test_fraction, seed)
        targets = {out / "train": train, out / "test" / "all": test}
    else:
        targets = {out: pairs}
    for path in targets:   # every split checked before any is written
        check_target(path, overwrite, "--overwrite")
    # all splits or none: a damaged image (or Ctrl-C) in the test split must not leave OUT/train looking complete
    with LMDBSet(overwrite, "--overwrite") as lmdbs:
        return {str(path): lmdbs.write(path, records(items, level, seed)) for path, items in targets.items()}
