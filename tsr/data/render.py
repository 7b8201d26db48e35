"""Render one word as a TextZoom-like HR crop (128x32 RGB).

TextZoom's crops are tight boxes around one word, resized to 128x32 whatever the word's length, so the text
fills most of the box and long words are squeezed. We do the same at twice the size (256x64): the word's ink
(rotated a little) is scaled into the box, drawn over a plain, gradient or blotchy background in a contrasting
colour, then the whole crop is downsampled x2 with an anti-aliasing filter.
"""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

MAX_SQUEEZE = 0.45   # narrowest glyphs allowed (width scale / height scale); longer words get a lower text height
MAX_STRETCH = 1.8    # widest glyphs allowed when a short word is stretched towards the box width


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # cached per process: a worker loads each (font, size) once
    return ImageFont.truetype(path, size)


def ink_mask(text: str, font: ImageFont.FreeTypeFont, angle: float) -> Image.Image:
    """The word's coverage as an 'L' image (255 = ink), rotated by `angle` degrees and cropped tight to the ink."""
    left, top, right, bottom = font.getbbox(text)
    margin = font.size // 4
    mask = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(mask).text((margin - left, margin - top), text, font=font, fill=255)
    if abs(angle) > 0.1:
        # bilinear: twice as fast as bicubic, and the mask is resampled again (LANCZOS) before use
        mask = mask.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=0)
    box = mask.getbbox()
    if box is None:
        raise ValueError(f"text {text!r} has no visible glyphs in font {font.path}")
    return mask.crop(box)


def _luminance(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _colour(rng: np.random.Generator, light: bool) -> tuple[int, int, int]:
    # mostly low saturation (paper, walls, white/black signs), sometimes vivid, as in street scenes
    hue, saturation = rng.random(), min(1.0, rng.beta(1.0, 2.5))
    value = rng.uniform(0.65, 1.0) if light else rng.uniform(0.0, 0.5)
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, value))


def colours(rng: np.random.Generator) -> tuple[tuple, tuple]:
    """(background, text) RGB colours at least 70 apart in luminance (0-255); light text on dark 30% of the time."""
    light_text = rng.random() < 0.3
    for _ in range(100):
        background, text = _colour(rng, not light_text), _colour(rng, light_text)
        if abs(_luminance(background) - _luminance(text)) >= 70:
            return background, text
    return ((20, 20, 20), (235, 235, 235)) if light_text else ((235, 235, 235), (20, 20, 20))


def background(size: tuple[int, int], colour: tuple, rng: np.random.Generator) -> np.ndarray:
    """[h, w, 3] float32 background around `colour`: plain, a linear gradient, or low-frequency blotches."""
    width, height = size
    base = np.empty((height, width, 3), np.float32)
    base[:] = colour
    kind = rng.random()
    if kind < 0.3:
        direction = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = (xs / width - 0.5) * np.cos(direction) + (ys / height - 0.5) * np.sin(direction)
        base += ramp[:, :, None] * rng.uniform(-60, 60, 3).astype(np.float32)
    elif kind < 0.55:
        coarse = rng.normal(0, 1, (max(2, height // 8), max(2, width // 8))).astype(np.float32)
        smooth = np.asarray(Image.fromarray(coarse, mode="F").resize((width, height), Image.BICUBIC))
        base += smooth[:, :, None] * rng.uniform(4, 16)
    if rng.random() < 0.3:  # grain, as in printed or painted surfaces
        base += rng.normal(0, rng.uniform(1, 5), (height, width, 1)).astype(np.float32)
    return base


def render_word(text: str, font_path: str, rng: np.random.Generator, size=(128, 32)) -> Image.Image:
    """`text` in the font at `font_path` -> RGB image of `size` (width, height), every glyph inside it."""
    out_width, out_height = size
    width, height = 2 * out_width, 2 * out_height
    ink = ink_mask(text, _font(font_path, int(rng.integers(40, 65))), rng.uniform(-4, 4))

    # text height as a fraction of the box, then the width the word takes at its natural aspect (x some
    # font-width variety); too wide -> squeezed (like TextZoom's long crops), then shrunk if squeezed too much
    text_height = height * rng.uniform(0.55, 0.9)
    natural = ink.width * text_height / ink.height * rng.uniform(0.85, 1.2)
    room = width * rng.uniform(0.86, 0.98)
    text_width = min(natural, room)
    if text_width < natural * MAX_SQUEEZE:
        text_height *= text_width / (natural * MAX_SQUEEZE)
    elif text_width < width * 0.6:  # short word: a tight crop stretches it
        text_width = min(width * rng.uniform(0.6, 0.9), natural * MAX_STRETCH)
    text_width, text_height = max(1, int(round(text_width))), max(1, int(round(text_height)))
    ink = ink.resize((text_width, text_height), Image.LANCZOS)

    x = int(round((width - text_width) * rng.uniform(0.15, 0.85)))
    y = int(round((height - text_height) * rng.uniform(0.2, 0.8)))
    ground, ink_colour = colours(rng)
    canvas = Image.fromarray(np.clip(background((width, height), ground, rng) + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.15:  # a soft drop shadow, darker than the background
        shadow = tuple(int(c * 0.4) for c in ground)
        offset = int(rng.integers(1, 4))
        canvas.paste(shadow, (x + offset, y + offset), ink.filter(ImageFilter.GaussianBlur(1.0)))
    canvas.paste(ink_colour, (x, y), ink)
    return canvas.resize(size, Image.LANCZOS)  # x2 down, anti-aliased
