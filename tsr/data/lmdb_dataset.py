"""TextZoom LMDB datasets (real TextZoom or `tsr synth` output; same layout).

Keys: `num-samples`, `label-%09d`, `image_hr-%09d` (or `image_HR-%09d`, as TextZoom's crop script writes),
`image_lr-%09d`, 1-indexed. Labels are read and filtered once in __init__ (that env is closed again, so
nothing is open when DataLoader workers fork); images are read through an env opened lazily in each process
(read-only, lock=False): an env must not be used across fork, and py-lmdb refuses to open one path twice in a
process, so every process keeps one env per path (`shared_env`) and a forked worker that inherited one (the
parent read samples itself before) closes its copy and opens its own.

data.mdb is checked against its header before it is mapped (tsr.data.lmdb_check: a truncated file is a DataError,
not a bus error). A corrupt record (missing label or image key, undecodable image or decompression bomb, a
damaged LMDB page under its keys) is never replaced by another sample:
`__getitem__` returns None and `collate` drops it and counts it in `batch["corrupt"]`. Training sums that count
and reports it; evaluation reports it per split beside the metrics.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

import lmdb
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from tsr.data.cache import DecodedPairs
from tsr.charset import alphabet_for, filter_label
from tsr.data.lmdb_check import check_lmdb_file
from tsr.data.transforms import load_pair_uint8, to_float
from tsr.errors import DataError
from tsr.images import image_channels

log = logging.getLogger("tsr.data")
HR_KEYS = ("image_hr-%09d", "image_HR-%09d")


def open_lmdb(root) -> lmdb.Environment:
    """Open a TextZoom LMDB read-only, or raise DataError naming the path and what was expected."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data path {root} does not exist (expected a TextZoom LMDB folder with data.mdb)")
    if not (root / "data.mdb").is_file():
        raise DataError(f"data path {root} is not an LMDB (expected a folder holding data.mdb and lock.mdb)")
    check_lmdb_file(root / "data.mdb")
    try:
        return lmdb.open(str(root), readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
    except lmdb.Error as e:
        raise DataError(f"data path {root} could not be opened as an LMDB: {e}") from None


_ENVS: dict = {}  # realpath -> (pid that opened it, env)


def shared_env(root) -> lmdb.Environment:
    """This process's env for `root`, opened on first use; an env inherited through fork is replaced."""
    key = os.path.realpath(root)
    pid, env = _ENVS.get(key, (None, None))
    if env is not None and pid == os.getpid():
        return env
    if env is not None:
        env.close()  # the parent's env: closing our copy unmaps it here only (lock=False: no shared lock table)
    env = open_lmdb(root)
    _ENVS[key] = (os.getpid(), env)
    return env


@contextmanager
def _env_for_init(root):
    """This process's shared env when it already has one, else a private env closed on exit."""
    pid, env = _ENVS.get(os.path.realpath(root), (None, None))
    if env is not None and pid == os.getpid():
        yield env
        return
    env = open_lmdb(root)
    try:
        yield env
    finally:
        env.close()


class TextZoomLMDB(Dataset):
    """One TextZoom LMDB.

    Items: dict(lr [C, *lr_size], hr [C, *hr_size] float32 in [0,1], label (filtered str), index (1-based LMDB
    index), split (`split`, default the folder's name)), C = 4 with the mask channel else 3; or None for a corrupt
    record (see the module docstring). Labels empty after `label_filter` or longer than `max_len` are left out
    and counted in `.dropped = {"empty": n, "too_long": m}`; `.labels` / `.indices` hold the kept ones.
    With `cache`, every kept pair is decoded once here (by `cache_workers` processes; tsr.data.cache).
    """

    def __init__(self, root, label_filter: str = "lower", max_len: int = 25, hr_size=(32, 128), lr_size=(16, 64),
                 mask: bool = True, split: Optional[str] = None, cache: bool = False, cache_workers: int = 0):
        alphabet_for(label_filter)  # ValueError for an unknown filter, even on an empty LMDB
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.root = str(root)
        self.label_filter, self.max_len = label_filter, max_len
        self.hr_size, self.lr_size, self.mask = tuple(hr_size), tuple(lr_size), mask
        self.split = split or Path(root).name
        self.labels, self.indices, self.dropped = self._read_labels()
        log.info("%s", self.kept_summary())
        channels = image_channels(mask)
        self.cached = DecodedPairs.build(self._read_pixels, len(self), (channels, *self.hr_size),
                                         (channels, *self.lr_size), cache_workers, self.root) if cache else None

    def _read_labels(self):
        with _env_for_init(self.root) as env, _Reader(env) as reader:
            raw = reader.get(b"num-samples")
            if reader.damaged:
                raise DataError(f"data path {self.root}: the LMDB is damaged where 'num-samples' is stored")
            total = self._num_samples(raw)
            # a record without a readable label stays in (label None) so that reading it reports it as corrupt
            labels, indices, dropped = [], [], {"empty": 0, "too_long": 0}
            for index in range(1, total + 1):
                value = reader.get(b"label-%09d" % index)
                label = None if value is None else filter_label(value.decode("utf-8", "replace"), self.label_filter)
                if label == "":
                    dropped["empty"] += 1
                elif label is not None and len(label) > self.max_len:
                    dropped["too_long"] += 1
                else:
                    labels.append(label)
                    indices.append(index)
        return labels, indices, dropped

    def kept_summary(self) -> str:
        """'ROOT: kept 3 of 5 records (left out 1 label empty after the 'lower' filter, 1 longer than 25)'."""
        total = len(self) + sum(self.dropped.values())
        return (f"{self.root}: kept {len(self)} of {total} records (left out {self.dropped['empty']} label(s) empty "
                f"once characters outside the '{self.label_filter}' charset are removed, {self.dropped['too_long']} "
                f"longer than data.max_len {self.max_len})")

    def _num_samples(self, raw: Optional[bytes]) -> int:
        if raw is None:
            raise DataError(f"data path {self.root} is an LMDB without the key 'num-samples' "
                            "(expected TextZoom's layout: num-samples, label-%09d, image_hr-%09d, image_lr-%09d)")
        try:
            total = int(raw)
        except ValueError:
            total = -1
        if total < 0:
            raise DataError(f"data path {self.root}: 'num-samples' is {raw[:40]!r} (expected a non-negative integer)")
        return total

    def __len__(self) -> int:
        return len(self.indices)

    def _read_pixels(self, i: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """Kept record i -> (hr, lr) uint8 at the model's sizes, or None when it is unreadable."""
        index, label = self.indices[i], self.labels[i]
        if label is None:
            return None
        with _Reader(shared_env(self.root)) as reader:
            hr_bytes = next((b for b in (reader.get((k % index).encode()) for k in HR_KEYS) if b is not None), None)
            lr_bytes = reader.get(b"image_lr-%09d" % index)
        if hr_bytes is None or lr_bytes is None:
            return None
        try:
            return load_pair_uint8(hr_bytes, lr_bytes, self.hr_size, self.lr_size, self.mask)
        # PIL's errors for undecodable images; a decompression bomb (an image declaring more pixels than PIL's
        # MAX_IMAGE_PIXELS) is a damaged record too
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None

    def __getitem__(self, i: int) -> Optional[dict]:
        pixels = self.cached.get(i) if self.cached is not None else self._read_pixels(i)
        if pixels is None:
            return None
        hr, lr = pixels
        return {"lr": to_float(lr), "hr": to_float(hr), "label": self.labels[i], "index": self.indices[i],
                "split": self.split}


class _Reader:
    """Reads keys in one read transaction; a damaged page under a key (lmdb.CorruptedError, ...) reads as a missing
    value, i.e. a corrupt record. LMDB marks a transaction that met an error as failed (every later get fails too),
    so the transaction is replaced after one: records on intact pages stay readable."""

    def __init__(self, env: lmdb.Environment):
        self.env, self.txn, self.damaged = env, env.begin(), 0

    def get(self, key: bytes) -> Optional[bytes]:
        try:
            return self.txn.get(key)
        except lmdb.Error:
            self.damaged += 1
            self.txn.abort()
            self.txn = self.env.begin()
            return None

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.txn.abort()


def collate(batch: Sequence[Optional[dict]]) -> dict:
    """Stack the readable samples: dict(lr [B,C,h,w], hr [B,C,H,W], label [B] str, index [B] int64, split [B] str,
    corrupt = how many records of this batch were unreadable and dropped). An all-corrupt batch has B = 0."""
    good = [item for item in batch if item is not None]
    corrupt = len(batch) - len(good)
    if not good:
        empty = torch.zeros(0)
        return {"lr": empty, "hr": empty, "label": [], "index": torch.zeros(0, dtype=torch.long), "split": [],
                "corrupt": corrupt}
    return {"lr": torch.stack([g["lr"] for g in good]), "hr": torch.stack([g["hr"] for g in good]),
            "label": [g["label"] for g in good], "index": torch.tensor([g["index"] for g in good]),
            "split": [g["split"] for g in good], "corrupt": corrupt}


def dataset_options(data: dict) -> dict:
    """TextZoomLMDB's keyword arguments from a config's `data` section."""
    return dict(label_filter=data["label_filter"], max_len=data["max_len"], mask=data["mask"],
                hr_size=(data["hr_height"], data["hr_width"]), lr_size=(data["lr_height"], data["lr_width"]),
                cache=data["cache"], cache_workers=data["num_workers"])


def build_train_dataset(roots: Sequence, **kwargs) -> ConcatDataset:
    """Several training LMDBs (TextZoom's train1 + train2) as one dataset."""
    if not roots:
        raise DataError("data.train_roots is empty (expected one or more TextZoom LMDB folders)")
    return ConcatDataset([TextZoomLMDB(root, **kwargs) for root in roots])


def load_test_splits(test_root, splits: Sequence[str] = ("easy", "medium", "hard"), allow_empty: bool = False,
                     **kwargs) -> dict:
    """{split: TextZoomLMDB} for TEST_ROOT/<split>, in the given order; a split with no record to read is an error
    unless `allow_empty` (tsr bench times the evaluator on what there is)."""
    test_root = Path(test_root)
    if not splits:
        raise DataError(f"no test split named for {test_root} (data.test_splits is empty; expected e.g. "
                        f"[easy, medium, hard])")
    repeated = sorted({s for s in splits if list(splits).count(s) > 1})
    if repeated:
        # a split twice would print its column twice; the A column would still count it once
        raise DataError(f"test splits {list(splits)} name {', '.join(repeated)} more than once (expected each split "
                        f"folder of {test_root} once)")
    if not test_root.is_dir():
        raise DataError(f"test root {test_root} does not exist (expected a folder with {', '.join(splits)})")
    missing = [s for s in splits if not (test_root / s).exists()]
    if missing:
        present = sorted(p.name for p in test_root.iterdir() if p.is_dir())
        raise DataError(f"test root {test_root} has no split folder {', '.join(missing)} "
                        f"(found: {', '.join(present) or 'nothing'})")
    datasets = {split: TextZoomLMDB(test_root / split, split=split, **kwargs) for split in splits}
    for split, dataset in datasets.items():
        # evaluation and validation alike: an empty split would leave its columns '-' and the A column without it
        if len(dataset) == 0 and not allow_empty:
            raise DataError(f"test split '{split}' has nothing to evaluate: {dataset.kept_summary()}")
    return datasets


def first_records(splits: dict, limit: Optional[int]) -> dict:
    """{split: dataset} -> the first `limit` records of each split (quick CPU runs: validation's train.val_limit,
    `tsr eval --limit`); None: all of them."""
    if limit is None:
        return dict(splits)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"a record limit must be a positive integer or None, got {limit!r}")
    return {name: Subset(ds, range(min(limit, len(ds)))) for name, ds in splits.items()}
