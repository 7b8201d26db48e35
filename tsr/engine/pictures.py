"""Picture grids: one row per sample, one column per image kind (LR | bicubic | SR ... | HR), each image with the
word read from it (green when right, red and marked [x] when wrong) and the true word at the left. Used for
TensorBoard during training and for the PNGs beside `tsr eval`'s tables."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from tsr.metrics.text import word_correct

FONT_SIZE = 12   # --pictures-font: larger for figures in papers; text rows and the label column grow with it
_GAP = 4
_BACKGROUND, _INK, _RIGHT, _WRONG = (255, 255, 255), (0, 0, 0), (0, 130, 0), (200, 0, 0)


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)   # scalable when Pillow has FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def _to_uint8(images: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """[N, C, h, w] in [0,1] (C >= 3: the mask channel is dropped; C = 1: grey) -> [N, H, W, 3] uint8, enlarged
    by nearest neighbour so that LR pixels stay visible as pixels."""
    images = images.detach().float().cpu()
    images = images[:, :3] if images.shape[1] >= 3 else images[:, :1].expand(-1, 3, -1, -1)
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="nearest")
    return (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def picture_grid(columns: Sequence[tuple[str, torch.Tensor]], labels: Sequence[str],
                 words: Optional[Mapping[str, Optional[Sequence[str] | Mapping[str, Sequence[str]]]]] = None,
                 scale: int = 2, font_size: int = FONT_SIZE) -> Image.Image:
    """columns: (title, images [N, C, h, w]) in display order, all shown at the largest column's size x `scale`;
    labels: the N true words; words: {title: N predicted words or None} for the columns that were read, or
    {title: {judge: N words}} with several judges (one line per judge under each image, 'ASTER: word')."""
    text_height, label_width = font_size + 2, font_size * 10
    if not columns:
        raise ValueError("picture_grid needs at least one column")
    count = len(labels)
    if any(images.shape[0] != count for _, images in columns):
        raise ValueError(f"picture_grid: every column needs {count} images, got "
                         f"{[(title, images.shape[0]) for title, images in columns]}")
    words = {title: _lines(read) for title, read in (words or {}).items()}
    lines = max([len(read) for read in words.values() if read] or [1])
    height = max(images.shape[-2] for _, images in columns) * scale
    width = max(images.shape[-1] for _, images in columns) * scale
    cell_w, cell_h = width + _GAP, height + text_height * lines + _GAP
    canvas = Image.new("RGB", (label_width + cell_w * len(columns), text_height + _GAP + cell_h * count), _BACKGROUND)
    draw, font = ImageDraw.Draw(canvas), _font(font_size)
    draw.text((2, 0), "true word", fill=_INK, font=font)
    for c, (title, images) in enumerate(columns):
        x = label_width + c * cell_w
        draw.text((x, 0), title, fill=_INK, font=font)
        pixels = _to_uint8(images, (height, width))
        read = words.get(title)
        for r in range(count):
            y = text_height + _GAP + r * cell_h
            canvas.paste(Image.fromarray(pixels[r]), (x, y))
            for line, (prefix, judged) in enumerate(read or []):
                right = word_correct(judged[r], labels[r])
                text = prefix + judged[r] + ("" if right else "  [x]")
                if len(text) > width // 6:   # keep a long (garbled) reading inside its cell
                    text = text[:width // 6 - 1] + "~"
                draw.text((x, y + height + line * text_height), text, fill=_RIGHT if right else _WRONG, font=font)
    for r, label in enumerate(labels):
        draw.text((2, text_height + _GAP + r * cell_h + height // 2 - font_size // 2), label, fill=_INK, font=font)
    return canvas


def _lines(read) -> Optional[list[tuple[str, Sequence[str]]]]:
    """N words -> [("", words)]; {judge: N words} -> [("judge: ", words), ...]; None stays None."""
    if read is None:
        return None
    if isinstance(read, Mapping):
        return [(f"{judge}: ", judged) for judge, judged in read.items()]
    return [("", read)]


class SampleKeeper:
    """An evaluator `on_batch` callback that keeps `count` samples of each split (this rank's share) with every
    row's images and words, and turns them into one picture grid per split: LR | <rows in evaluation order>
    (`titles` renames rows for display). Which samples: the first ones, or with `seed` and `sizes` ({split:
    samples this rank sees}) `count` positions drawn by the seed (the same seed shows the same words)."""

    def __init__(self, count: int, titles: Optional[Mapping[str, str]] = None, seed: Optional[int] = None,
                 sizes: Optional[Mapping[str, int]] = None, font_size: int = FONT_SIZE):
        self.count, self.titles, self.font_size = count, dict(titles or {}), font_size
        self.chosen: dict[str, set[int]] = {}
        if seed is not None and sizes:
            for split, size in sizes.items():
                draw = np.random.default_rng(seed).choice(size, min(count, size), replace=False) if size else []
                self.chosen[split] = {int(i) for i in draw}
        self.seen: dict[str, int] = {}
        self.parts: dict[str, list[dict]] = {}

    def __call__(self, split: str, batch: dict, images_by_row: dict, words_by_row: dict) -> None:
        start = self.seen.get(split, 0)
        n_batch = len(batch["label"])
        self.seen[split] = start + n_batch
        kept = sum(len(p["labels"]) for p in self.parts.get(split, []))
        if self.count <= 0 or kept >= self.count:
            return
        if split in self.chosen:
            take = [i for i in range(n_batch) if start + i in self.chosen[split]]
        else:
            take = list(range(min(self.count - kept, n_batch)))
        if not take:
            return
        self.parts.setdefault(split, []).append({
            "lr": batch["lr"][take].cpu(), "labels": [batch["label"][i] for i in take],
            "images": {row: images[take].cpu() for row, images in images_by_row.items()},
            "words": {row: _pick(w, take) for row, w in words_by_row.items()}})

    @property
    def samples(self) -> dict[str, dict]:
        """{split: {"lr", "labels", "images": {row: [n, C, H, W]}, "words": {row: words or None}}}."""
        out = {}
        for split, parts in self.parts.items():
            rows = parts[0]["images"].keys()
            out[split] = {"lr": torch.cat([p["lr"] for p in parts]), "labels": [w for p in parts for w in p["labels"]],
                          "images": {row: torch.cat([p["images"][row] for p in parts]) for row in rows},
                          "words": {row: _join([p["words"][row] for p in parts]) for row in rows}}
        return out

    def grids(self) -> dict[str, Image.Image]:
        out = {}
        for split, sample in self.samples.items():
            columns = [("LR", sample["lr"])] + [(self.titles.get(row, row), images)
                                                for row, images in sample["images"].items()]
            words = {self.titles.get(row, row): w for row, w in sample["words"].items()}
            out[split] = picture_grid(columns, sample["labels"], words, font_size=self.font_size)
        return out


def _pick(words, take: Sequence[int]):
    """A row's words at positions `take`: a list, {judge: list} or None."""
    if words is None:
        return None
    if isinstance(words, Mapping):
        return {judge: [judged[i] for i in take] for judge, judged in words.items()}
    return [words[i] for i in take]


def _join(parts: Sequence):
    """One row's picked words of several batches, concatenated (lists, {judge: list} or None)."""
    if parts[0] is None:
        return None
    if isinstance(parts[0], Mapping):
        return {judge: [w for p in parts for w in p[judge]] for judge in parts[0]}
    return [w for p in parts for w in p]
