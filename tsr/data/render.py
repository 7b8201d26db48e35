"""Render one word as a TextZoom-like HR crop (128x32 RGB): a tight box around the word, varied font, size,
colours, background, position and slight rotation, squeezed to the fixed size as TextZoom's crops are."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _colours(rng: np.random.Generator) -> tuple[tuple, tuple]:
    """Background and text colours far enough apart in luminance to read; sometimes light text on dark."""
    while True:
        bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        lum = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
        if abs(lum(bg) - lum(fg)) > 90:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)


def _background(size: tuple[int, int], colour: tuple, rng: np.random.Generator) -> Image.Image:
    """Plain, horizontal/vertical gradient, or mildly textured background around `colour`."""
    w, h = size
    base = np.empty((h, w, 3), np.float32)
    base[:] = colour
    kind = rng.integers(0, 3)
    if kind == 1:
        ramp = np.linspace(-1, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        shift = rng.uniform(-40, 40, 3).astype(np.float32)
        base += (ramp[None, :, None] if len(ramp) == w else ramp[:, None, None]) * shift
    elif kind == 2:
        base += rng.normal(0, rng.uniform(3, 10), (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def render_word(text: str, font_path: str, rng: np.random.Generator, size=(128, 32)) -> Image.Image:
    """`text` in `font_path` -> RGB image of `size` (width, height)."""
    font = _font(font_path, int(rng.integers(36, 60)))
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    em = font.size
    pad_x, pad_y = int(em * rng.uniform(0.05, 0.3)), int(em * rng.uniform(0.08, 0.3))
    dx, dy = rng.integers(-pad_x // 3 - 1, pad_x // 3 + 1), rng.integers(-pad_y // 3 - 1, pad_y // 3 + 1)
    bg_colour, fg_colour = _colours(rng)
    canvas = _background((tw + 2 * pad_x, th + 2 * pad_y), bg_colour, rng)
    ImageDraw.Draw(canvas).text((pad_x - left + dx, pad_y - top + dy), text, font=font, fill=fg_colour)
    angle = rng.uniform(-4, 4)
    canvas = canvas.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=bg_colour)  # expand: keep every glyph
    return canvas.resize(size, Image.LANCZOS)
