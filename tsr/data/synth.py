"""The embedded default dataset: a synthetic dataset in TextZoom's exact layout.

OUT/train (the three strengths mixed, as TextZoom's train1/train2 mix distances) and OUT/test/{easy,medium,hard},
each a TextZoom LMDB of HR PNG 128x32 / LR PNG 64x16 pairs, plus OUT/manifest.json. Every record draws from its
own RNG seeded by (seed, split, index), so output is byte-identical for a seed whatever the worker count.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

import tsr
from tsr.data.degrade import DEGRADATIONS, degrade
from tsr.data.fonts import find_fonts
from tsr.data.lmdb_writer import write_textzoom_lmdb
from tsr.data.render import render_word
from tsr.errors import DataError
from tsr.io import atomic_write_text

LEVELS = ("easy", "medium", "hard")
SPLIT_IDS = {"train": 0, "easy": 1, "medium": 2, "hard": 3}
WORDS_PATH = Path(__file__).with_name("words.txt")
HR_SIZE, LR_SCALE = (128, 32), 2

_worker: dict = {}


def _init_worker(font_paths: list[str]) -> None:
    _worker["fonts"] = font_paths
    _worker["words"] = WORDS_PATH.read_text().split()


def _text(rng: np.random.Generator, words: list[str]) -> str:
    """A real word (mixed case) most of the time; numbers and short codes sometimes, as in street scenes."""
    kind = rng.random()
    if kind < 0.06:
        return str(rng.integers(0, 10 ** int(rng.integers(1, 6))))
    if kind < 0.10:
        word = words[rng.integers(len(words))][: int(rng.integers(1, 4))]
        return word + str(rng.integers(0, 1000))
    word = words[rng.integers(len(words))]
    case = rng.random()
    return word.upper() if case < 0.15 else word.title() if case < 0.40 else word


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_record(seed: int, split: str, index: int) -> tuple[bytes, bytes, str]:
    """(HR PNG bytes, LR PNG bytes, label) of record `index` of `split` ('train' mixes the three levels)."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    text = _text(rng, _worker["words"])
    font = _worker["fonts"][rng.integers(len(_worker["fonts"]))]
    hr = render_word(text, font, rng, HR_SIZE)
    level = LEVELS[rng.integers(3)] if split == "train" else split
    return _png(hr), _png(degrade(hr, level, rng, LR_SCALE)), text


def _make(args):
    return make_record(*args)


def synthesize(out, n_train: int, n_test: int, seed: int = 0, workers: Optional[int] = None,
               font_dir: Optional[str] = None, overwrite: bool = False) -> dict:
    """Write the dataset; returns the manifest (also written to OUT/manifest.json)."""
    out = Path(out)
    fonts = [str(p) for p in find_fonts(font_dir)]
    jobs = [("train", out / "train", n_train)] + [(level, out / "test" / level, n_test) for level in LEVELS]
    if not overwrite:
        existing = [str(path) for _, path, n in jobs if n and path.exists()]
        if existing:
            raise DataError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace, or --reuse")
    workers = workers or os.cpu_count() or 1
    start = time.time()
    counts = {}
    with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(
            workers, initializer=_init_worker, initargs=(fonts,)) as pool:
        for split, path, n in jobs:
            if n <= 0:
                continue
            records = pool.imap(_make, ((seed, split, i) for i in range(1, n + 1)), chunksize=64)
            counts[split] = write_textzoom_lmdb(
                path, tqdm(records, total=n, desc=f"synth {split}", unit="img", leave=False), overwrite=overwrite)
    manifest = {"tsr_version": tsr.__version__, "seed": seed, "train": n_train, "test_per_split": n_test,
                "counts": counts, "fonts": fonts, "degradations": DEGRADATIONS, "train_mix": "easy/medium/hard 1:1:1",
                "hr_size": list(HR_SIZE), "lr_scale": LR_SCALE, "seconds": round(time.time() - start, 1)}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def matches_manifest(out, n_train: int, n_test: int, seed: int, font_dir: Optional[str] = None) -> bool:
    """True when OUT holds a complete dataset made with these arguments and this generator's settings."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        return False
    m = json.loads(path.read_text())
    same = (m.get("seed"), m.get("train"), m.get("test_per_split"), m.get("degradations")) == \
        (seed, n_train, n_test, json.loads(json.dumps(DEGRADATIONS)))
    return same and m.get("fonts") == [str(p) for p in find_fonts(font_dir)]
