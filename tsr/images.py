"""Image tensors as tsr passes them around: [B, C, H, W] in [0, 1], RGB plus, with data.mask, TextZoom's mask
channel (a binarised grey image as the 4th channel)."""


def image_channels(mask: bool) -> int:
    """Channels of tsr's images: 4 (RGB + mask) with `mask`, else 3 (RGB)."""
    return 4 if mask else 3
