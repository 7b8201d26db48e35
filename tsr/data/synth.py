"""The embedded default dataset: a synthetic dataset in TextZoom's exact layout.

OUT/train (the three strengths mixed, as TextZoom's train1/train2 mix distances) and OUT/test/{easy,medium,hard},
each a TextZoom LMDB of HR PNG 128x32 / LR PNG 64x16 pairs, plus OUT/manifest.json. Every record draws from its
own RNG seeded by (seed, split, index), so output is byte-identical for a seed whatever the worker count.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

import tsr
from tsr.data.degrade import DEGRADATIONS, degrade
from tsr.data.fonts import find_fonts
from tsr.data.lmdb_writer import check_target, png_bytes, write_textzoom_lmdb
from tsr.data.render import render_word
from tsr.errors import DataError
from tsr.io import atomic_write_text

GENERATOR_VERSION = 3  # bump when rendering or degradation changes, so `--reuse` regenerates old data
LEVELS = ("easy", "medium", "hard")
SPLIT_IDS = {"train": 0, "easy": 1, "medium": 2, "hard": 3}
WORDS_PATH = Path(__file__).with_name("words.txt")
HR_SIZE, LR_SCALE = (128, 32), 2

_worker: dict = {}


def _init_worker(font_paths: list[str]) -> None:
    _worker["fonts"] = font_paths
    _worker["words"] = WORDS_PATH.read_text().split()


def _text(rng: np.random.Generator, words: list[str]) -> str:
    """A real word most of the time; numbers ("2024") and codes ("b52", "A7") 10% of the time, as in street
    scenes. Cases: lower 60%, Title 25%, UPPER 15%."""
    kind = rng.random()
    if kind < 0.06:
        text = str(rng.integers(0, 10 ** int(rng.integers(1, 6))))
    elif kind < 0.10:
        letters = words[rng.integers(len(words))][: int(rng.integers(1, 4))]
        digits = str(rng.integers(0, 10 ** int(rng.integers(1, 4))))
        text = letters + digits if rng.random() < 0.75 else digits + letters
    else:
        text = words[rng.integers(len(words))]
    case = rng.random()
    return text.upper() if case < 0.15 else text.title() if case < 0.40 else text


def make_record(seed: int, split: str, index: int) -> tuple[bytes, bytes, str]:
    """(HR PNG bytes, LR PNG bytes, label) of record `index` of `split` ('train' mixes the three levels)."""
    if not _worker:  # called outside a pool: the system fonts
        _init_worker([str(p) for p in find_fonts()])
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    text = _text(rng, _worker["words"])
    font = _worker["fonts"][rng.integers(len(_worker["fonts"]))]
    hr = render_word(text, font, rng, HR_SIZE)
    level = LEVELS[rng.integers(3)] if split == "train" else split
    return png_bytes(hr), png_bytes(degrade(hr, level, rng, LR_SCALE)), text


def _make(args):
    return make_record(*args)


def test_counts(n_test: Union[int, Sequence[int]]) -> dict[str, int]:
    """Pairs per test split: one number for all three, or one per split in the order easy, medium, hard
    (TextZoom's test is 1619, 1411, 1343)."""
    counts = [n_test] * len(LEVELS) if isinstance(n_test, int) else list(n_test)
    if len(counts) != len(LEVELS) or any(not isinstance(n, int) or n < 0 for n in counts):
        raise ValueError(f"test pairs: expected one count >= 0 or {len(LEVELS)} ({', '.join(LEVELS)}), got {n_test!r}")
    return dict(zip(LEVELS, counts))


test_counts.__test__ = False   # a "test_" name in tsr, not a test: pytest must not collect it where imported


def synthesize(out, n_train: int, n_test: Union[int, Sequence[int]], seed: int = 0, workers: Optional[int] = None,
               font_dir: Optional[str] = None, overwrite: bool = False) -> dict:
    """Write OUT/train (n_train pairs) and OUT/test/{easy,medium,hard} (n_test pairs each, or the counts of
    `test_counts`; none when 0) and OUT/manifest.json; returns the manifest. `workers` processes (default: all
    cores) render in parallel; the output does not depend on their number."""
    out = Path(out)
    if n_train < 0:
        raise ValueError(f"n_train must be >= 0, got {n_train}")
    per_split = test_counts(n_test)
    fonts = [str(p) for p in find_fonts(font_dir)]
    jobs = [("train", out / "train", n_train)] + [(level, out / "test" / level, n) for level, n in per_split.items()]
    for _, path, n in jobs:   # anything but an LMDB there is refused first: --overwrite would not replace it either
        if n:
            check_target(path, True, "--overwrite")
    if not overwrite:
        existing = [str(path) for _, path, n in jobs if n and path.exists()]
        if existing:
            raise DataError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace, or --reuse")
    # An earlier synthesis's LMDB where this one writes nothing would be read as this data (training validates on
    # every split folder) though the manifest says 0; deleting it could lose data someone meant to keep (a training
    # set kept while the test splits are made again): it is theirs to remove.
    stale = [str(path) for _, path, n in jobs if not n and path.exists()]
    if stale:
        raise DataError(f"{', '.join(stale)} hold(s) records of an earlier synthesis, and this one writes none there; "
                        f"delete them, or give them a count, so that {out} holds one synthesis")
    # a folder being rewritten has no manifest, so an interrupted run is never taken for a complete one
    (out / "manifest.json").unlink(missing_ok=True)
    workers = max(1, workers or os.cpu_count() or 1)
    start = time.time()
    counts = {}
    for split, path, n in jobs:
        if n <= 0:
            continue
        with _record_stream(seed, split, n, workers, fonts) as records:
            counts[split] = write_textzoom_lmdb(
                path, tqdm(records, total=n, desc=f"synth {split}", unit="img", leave=False,
                                 # in a log file (CI, cluster jobs) a line every 10 s, not a redraw per batch
                                 mininterval=0.1 if sys.stderr.isatty() else 10.0), overwrite=overwrite,
                option="--overwrite")
    manifest = {"tsr_version": tsr.__version__, "generator_version": GENERATOR_VERSION,
                "arguments": {"train": n_train, "test": n_test, "seed": seed, "workers": workers,
                              "fonts": font_dir},
                "seed": seed, "train": n_train, "test_per_split": per_split, "counts": counts, "fonts": fonts,
                "degradations": DEGRADATIONS, "train_mix": {level: 1 / 3 for level in LEVELS},
                "hr_size": list(HR_SIZE), "lr_size": [HR_SIZE[0] // LR_SCALE, HR_SIZE[1] // LR_SCALE],
                "image_format": "PNG", "seconds": round(time.time() - start, 1)}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


@contextmanager
def _record_stream(seed: int, split: str, n: int, workers: int, fonts: list[str]) -> Iterator:
    """Records 1..n of `split` in order, made in this process (workers=1) or by a pool of `workers` processes."""
    jobs = ((seed, split, i) for i in range(1, n + 1))
    if workers == 1:
        _init_worker(fonts)
        yield map(_make, jobs)
        return
    # fork: workers start in milliseconds and inherit nothing heavy (no LMDB env is open here)
    context = mp.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(fonts,)) as pool:
        yield pool.imap(_make, jobs, chunksize=32)


def matches_manifest(out, n_train: int, n_test: Union[int, Sequence[int]], seed: int,
                     font_dir: Optional[str] = None) -> bool:
    """True when OUT holds a complete dataset made with these arguments and this generator's settings."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        return False
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    made = m.get("test_per_split")                  # {split: count}; manifests before 2026-11 hold one number
    try:
        made = test_counts([made.get(level) for level in LEVELS] if isinstance(made, dict) else made)
    except (ValueError, TypeError):
        return False
    same = (m.get("generator_version"), m.get("seed"), m.get("train"), made, m.get("degradations")) == (
        GENERATOR_VERSION, seed, n_train, test_counts(n_test), json.loads(json.dumps(DEGRADATIONS)))
    return same and m.get("fonts") == [str(p) for p in find_fonts(font_dir)]
