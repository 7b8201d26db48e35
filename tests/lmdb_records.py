"""Records for small TextZoom LMDBs in tests: PNG bytes of a given size and (HR png, LR png, label) pairs."""
import io

import numpy as np
from PIL import Image


def png(width, height, value=200, dark_box=None):
    array = np.full((height, width, 3), value, np.uint8)
    if dark_box:
        x0, y0, x1, y1 = dark_box
        array[y0:y1, x0:x1] = 10
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def pair(label="abc"):
    return png(128, 32, dark_box=(10, 5, 40, 20)), png(64, 16), label
