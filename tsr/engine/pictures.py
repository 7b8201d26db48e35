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

_TEXT_HEIGHT = 14
_LABEL_WIDTH = 120
_GAP = 4
_BACKGROUND, _INK, _RIGHT, _WRONG = (255, 255, 255), (0, 0, 0), (0, 130, 0), (200, 0, 0)


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)   # scalable when Pillow has FreeType
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
                 scale: int = 2) -> Image.Image:
    """columns: (title, images [N, C, h, w]) in display order, all shown at the largest column's size x `scale`;
    labels: the N true words; words: {title: N predicted words or None} for the columns that were read, or
    {title: {judge: N words}} with several judges (one line per judge under each image, 'ASTER: word')."""
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
    cell_w, cell_h = width + _GAP, height + _TEXT_HEIGHT * lines + _GAP
    canvas = Image.new("RGB", (_LABEL_WIDTH + cell_w * len(columns), _TEXT_HEIGHT + _GAP + cell_h * count), _BACKGROUND)
    draw, font = ImageDraw.Draw(canvas), _font()
    draw.text((2, 0), "true word", fill=_INK, font=font)
    for c, (title, images) in enumerate(columns):
        x = _LABEL_WIDTH + c * cell_w
        draw.text((x, 0), title, fill=_INK, font=font)
        pixels = _to_uint8(images, (height, width))
        read = words.get(title)
        for r in range(count):
            y = _TEXT_HEIGHT + _GAP + r * cell_h
            canvas.paste(Image.fromarray(pixels[r]), (x, y))
            for line, (prefix, judged) in enumerate(read or []):
                right = word_correct(judged[r], labels[r])
                text = prefix + judged[r] + ("" if right else "  [x]")
                if len(text) > width // 6:   # keep a long (garbled) reading inside its cell
                    text = text[:width // 6 - 1] + "~"
                draw.text((x, y + height + line * _TEXT_HEIGHT), text, fill=_RIGHT if right else _WRONG, font=font)
    for r, label in enumerate(labels):
        draw.text((2, _TEXT_HEIGHT + _GAP + r * cell_h + height // 2 - 6), label, fill=_INK, font=font)
    return canvas


def _lines(read) -> Optional[list[tuple[str, Sequence[str]]]]:
    """N words -> [("", words)]; {judge: N words} -> [("judge: ", words), ...]; None stays None."""
    if read is None:
        return None
    if isinstance(read, Mapping):
        return [(f"{judge}: ", judged) for judge, judged in read.items()]
    return [("", read)]


class SampleKeeper:
    """An evaluator `on_batch` callback that keeps the first `count` samples of each split (this rank's share)
    with every row's images and words, and turns them into one picture grid per split:
    LR | <rows in evaluation order> (`titles` renames rows for display)."""

    def __init__(self, count: int, titles: Optional[Mapping[str, str]] = None):
        self.count, self.titles = count, dict(titles or {})
        self.samples: dict[str, dict] = {}

    def __call__(self, split: str, batch: dict, images_by_row: dict, words_by_row: dict) -> None:
        if split in self.samples or self.count <= 0:
            return
        n = min(self.count, len(batch["label"]))
        self.samples[split] = {"lr": batch["lr"][:n].cpu(), "labels": list(batch["label"][:n]),
                               "images": {row: images[:n].cpu() for row, images in images_by_row.items()},
                               "words": {row: _first(w, n) for row, w in words_by_row.items()}}

    def grids(self) -> dict[str, Image.Image]:
        out = {}
        for split, sample in self.samples.items():
            columns = [("LR", sample["lr"])] + [(self.titles.get(row, row), images)
                                                for row, images in sample["images"].items()]
            words = {self.titles.get(row, row): w for row, w in sample["words"].items()}
            out[split] = picture_grid(columns, sample["labels"], words)
        return out


def _first(words, n: int):
    """The first n of a row's words: a list, {judge: list} or None."""
    if words is None:
        return None
    if isinstance(words, Mapping):
        return {judge: judged[:n] for judge, judged in words.items()}
    return words[:n]
