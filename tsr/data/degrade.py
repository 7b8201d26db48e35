"""HR crop -> LR crop at three strengths: Gaussian blur, x2 bicubic downsampling, Gaussian noise, JPEG.

TextZoom's LR images come from a shorter focal length: blurrier and noisier at half the size. The strengths
below were calibrated with a CRNN trained on HR synthetic images (the demo's recognizer stage; README, Data):
it reads bicubic-upscaled LR clearly worse at each level, easy > medium > hard.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

# ranges drawn uniformly per image: blur sigma (HR pixels), noise sigma (0-255 scale), JPEG quality
DEGRADATIONS = {
    "easy": {"blur": (0.4, 0.9), "noise": (1.0, 3.0), "jpeg": (60, 90)},
    "medium": {"blur": (0.8, 1.2), "noise": (2.0, 5.0), "jpeg": (40, 70)},
    "hard": {"blur": (1.1, 1.6), "noise": (4.0, 7.0), "jpeg": (25, 45)},
}


def degrade(hr: Image.Image, level: str, rng: np.random.Generator, scale: int = 2) -> Image.Image:
    """RGB HR image (w, h) -> RGB LR image (w/scale, h/scale) at strength `level`."""
    params = DEGRADATIONS[level]
    image = hr.filter(ImageFilter.GaussianBlur(rng.uniform(*params["blur"])))
    image = image.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
    array = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(*params["noise"]), (image.height, image.width, 3))
    image = Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(*params["jpeg"])))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
