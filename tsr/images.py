"""Image tensors as tsr passes them around: [B, C, H, W] in [0, 1], RGB plus, with data.mask, TextZoom's mask
channel (a binarised grey image as the 4th channel)."""


def image_channels(mask: bool) -> int:
    """Channels of tsr's images: 4 (RGB + mask) with `mask`, else 3 (RGB)."""
    return 4 if mask else 3


def lr_shape(data: dict) -> tuple[int, int, int]:
    """[C, h, w] of the LR crops a config's `data` section describes (TextZoom: [4, 16, 64] with the mask)."""
    return image_channels(data["mask"]), data["lr_height"], data["lr_width"]


def hr_shape(data: dict) -> tuple[int, int, int]:
    """[C, H, W] of the HR images a config's `data` section describes (TextZoom: [4, 32, 128] with the mask)."""
    return image_channels(data["mask"]), data["hr_height"], data["hr_width"]
