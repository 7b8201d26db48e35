"""A user's own image files (tsr sr / read / pack) -> RGB as a viewer shows them.

TextZoom's LMDBs hold 8-bit RGB PNGs, read with PIL's `convert("RGB")` as TextZoom's code reads them
(tsr.data.transforms.decode_image). Files people bring are more varied, and `convert("RGB")` misreads three common
kinds: a phone photo stored sideways with an EXIF orientation (read as stored), a 16-bit PNG (clipped to white),
and a crop with transparency (the colour under transparent pixels is often black: black text vanishes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tsr.errors import DataError

_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def open_rgb(path: Path, flag: str) -> Image.Image:
    """Image file -> 8-bit RGB PIL image, upright, transparency flattened; DataError naming `flag` and the file
    when it is not an image PIL can read (damaged, not an image, or over PIL's decompression-bomb limit)."""
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{flag} file {path} is not an image PIL can read ({e})") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _HIGH_DEPTH:
        values = np.asarray(image, dtype=np.float64)
        # 16-bit (and 32-bit integer PNG/TIFF) grey spans 0..65535; float images 0..1 or 0..255
        top = 65535.0 if image.mode != "F" else (1.0 if values.max(initial=0) <= 1.0 else 255.0)
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        # Flatten onto a ground that contrasts with what is opaque (the text, in a text crop with a transparent
        # ground): white under dark ink, black under light ink; a fixed white would hide white text
        ink = (rgb.mean(axis=2, keepdims=True) * alpha).sum() / max(alpha.sum(), 1e-9)
        ground = 1.0 if ink < 0.5 else 0.0
        flat = rgb * alpha + ground * (1.0 - alpha)
        return Image.fromarray((flat * 255.0 + 0.5).astype(np.uint8), "RGB")
    return image.convert("RGB")
