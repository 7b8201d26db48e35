"""tsr.data.user_images: files people bring read as a viewer shows them (16-bit, transparency, EXIF rotation), and
files PIL cannot read are one-line DataErrors naming the flag and the file."""
import numpy as np
import pytest
from PIL import Image

from tsr.data.user_images import open_rgb
from tsr.errors import DataError


def word(dark_ink=True):
    """A 64x16 crop: ink in a box on a plain ground; -> (uint8 RGB array, bool ink mask)."""
    ink = np.zeros((16, 64), bool)
    ink[4:12, 8:40] = True
    rgb = np.full((16, 64, 3), 235 if dark_ink else 20, np.uint8)
    rgb[ink] = 20 if dark_ink else 235
    return rgb, ink


def test_16_bit_grey_is_scaled_not_clipped_to_white(tmp_path):
    rgb, _ = word()
    grey16 = rgb[..., 0].astype(np.uint16) * 257
    Image.fromarray(grey16).save(tmp_path / "w.png")     # a 16-bit grey PNG
    assert Image.open(tmp_path / "w.png").mode.startswith("I")
    got = np.asarray(open_rgb(tmp_path / "w.png", "--input"))
    assert got.shape == (16, 64, 3) and np.array_equal(got[..., 1], rgb[..., 0])


@pytest.mark.parametrize("dark_ink", [True, False])
def test_ink_on_a_transparent_ground_stays_legible(tmp_path, dark_ink):
    rgb, ink = word(dark_ink)
    rgba = np.zeros((16, 64, 4), np.uint8)               # transparent black ground, opaque ink
    rgba[ink, :3], rgba[ink, 3] = rgb[ink], 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "w.png")
    got = np.asarray(open_rgb(tmp_path / "w.png", "--input")).astype(int)
    contrast = abs(got[ink].mean() - got[~ink].mean())
    assert contrast > 200      # convert("RGB") gives 0 for dark ink: ink and ground both black


def test_exif_orientation_is_applied(tmp_path):
    rgb, _ = word()
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))      # stored 16 wide, 64 high
    exif = Image.Exif()
    exif[0x0112] = 6                                        # "rotate 90 CW to view": how phones store it
    sideways.save(tmp_path / "w.jpg", exif=exif, quality=100)
    got = open_rgb(tmp_path / "w.jpg", "--input")
    assert got.size == (64, 16)
    assert np.abs(np.asarray(got).astype(int) - rgb).mean() < 4


def test_unreadable_files_are_one_line_errors_naming_the_flag(tmp_path, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"^--hr file .*bad.png is not an image PIL can read"):
        open_rgb(tmp_path / "bad.png", "--hr")
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 // 3)   # 3x the limit: PIL's bomb error
    with pytest.raises(DataError, match=r"^--input file .*big.png is not an image PIL can read \(Image size"):
        open_rgb(tmp_path / "big.png", "--input")
