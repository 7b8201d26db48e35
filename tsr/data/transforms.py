"""Image bytes -> tensors as TextZoom prepares them: PIL bicubic resize, [0,1] RGB, optional mask channel.

Two steps, so that a decoded cache (TextZoomLMDB(cache=True)) holds exactly what a fresh read would give: bytes
-> uint8 [C,H,W] at the model's size (RGB, plus the mask as 0/1), then uint8 -> float32 in [0,1].
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def decode_image(data: bytes) -> Image.Image:
    """Encoded bytes (PNG/JPEG/...) -> RGB PIL image; raises OSError/ValueError on undecodable data."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def text_mask(image: Image.Image) -> np.ndarray:
    """TextZoom's mask: grey <= mean grey -> 1 (dark text on light ground is 1), else 0. [H, W] float32."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return (grey <= grey.mean()).astype(np.float32)


def to_uint8(image: Image.Image, size_hw: tuple[int, int], mask: bool) -> torch.Tensor:
    """PIL image -> [3 or 4, H, W] uint8, resized bicubic to size_hw (height, width); the 4th channel is the
    mask as 0/1."""
    height, width = size_hw
    if image.size != (width, height):
        image = image.resize((width, height), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    if mask:
        array = np.concatenate([array, text_mask(image).astype(np.uint8)[:, :, None]], axis=2)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [3 or 4, H, W] from to_uint8 -> float32 in [0,1]: RGB / 255, the mask channel as it is."""
    out = pixels.float()
    out[:3] /= 255.0
    return out


def to_tensor(image: Image.Image, size_hw: tuple[int, int], mask: bool) -> torch.Tensor:
    """PIL image -> [3 or 4, H, W] float32 in [0,1], resized bicubic to size_hw (height, width)."""
    return to_float(to_uint8(image, size_hw, mask))


def load_pair_uint8(hr_bytes: bytes, lr_bytes: bytes, hr_size=(32, 128), lr_size=(16, 64), mask=True):
    """Encoded HR and LR images -> (hr, lr) uint8 as to_uint8 makes them."""
    return to_uint8(decode_image(hr_bytes), hr_size, mask), to_uint8(decode_image(lr_bytes), lr_size, mask)


def load_pair(hr_bytes: bytes, lr_bytes: bytes, hr_size=(32, 128), lr_size=(16, 64), mask=True):
    """Encoded HR and LR images -> (hr [C,32,128], lr [C,16,64]); C = 4 with the mask channel."""
    hr, lr = load_pair_uint8(hr_bytes, lr_bytes, hr_size, lr_size, mask)
    return to_float(hr), to_float(lr)


def bicubic_upscale(lr: torch.Tensor, size_hw) -> torch.Tensor:
    """LR [B, C, h, w] -> [B, C, *size_hw] by bicubic interpolation (align_corners=False): the `bicubic` row of the
    tables, the SR head's global skip and the degraded images a recognizer may train on (train.rec_inputs)."""
    return F.interpolate(lr, size=tuple(size_hw), mode="bicubic", align_corners=False)
