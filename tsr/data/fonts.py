"""Real TrueType fonts for `tsr synth`, found on the system in a fixed, sorted order (so the same machine
and seed give the same data). Debian/Ubuntu: fonts-dejavu-core and fonts-dejavu-extra (DejaVu Sans, Sans
Condensed, Serif, Serif Condensed, Sans Mono), optionally fonts-liberation and fonts-freefont-ttf."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PIL import ImageFont

from tsr.errors import DataError

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")
PREFERRED = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSansCondensed-Oblique.ttf",
    "DejaVuSansCondensed-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSerifCondensed.ttf", "DejaVuSerifCondensed-Bold.ttf", "DejaVuSerifCondensed-Italic.ttf",
    "DejaVuSerifCondensed-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "LiberationSans-Italic.ttf",
    "LiberationSans-BoldItalic.ttf", "LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf",
    "LiberationSerif-Italic.ttf", "LiberationSerif-BoldItalic.ttf", "LiberationMono-Regular.ttf",
    "LiberationMono-Bold.ttf", "LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf",
    "FreeSans.ttf", "FreeSansBold.ttf", "FreeSansOblique.ttf", "FreeSerif.ttf", "FreeSerifBold.ttf",
    "FreeSerifItalic.ttf", "FreeMono.ttf", "FreeMonoBold.ttf",
)


def find_fonts(font_dir: Optional[str] = None) -> list[Path]:
    """Every *.ttf / *.otf in `font_dir` (sorted), or the PREFERRED fonts present in the system font folders."""
    if font_dir is not None:
        root = Path(font_dir)
        fonts = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf")) if root.is_dir() else []
        if not fonts:
            raise DataError(f"--fonts {font_dir}: no .ttf or .otf files found there")
        for font in fonts:
            try:
                ImageFont.truetype(str(font), 20)
            except OSError as e:
                raise DataError(f"--fonts {font_dir}: {font} is not a font FreeType can load ({e})") from None
        return fonts
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        for dirpath, dirnames, files in os.walk(os.path.expanduser(folder)):
            dirnames.sort()  # walk in a fixed order: a font present twice always resolves to the same file
            for name in sorted(files):
                if name in PREFERRED and name not in found:
                    found[name] = Path(dirpath) / name
    if not found:
        raise DataError("none of the supported TrueType fonts (DejaVu, Liberation, GNU FreeFont) found in "
                        + ", ".join(FONT_DIRS) + ": install the Debian/Ubuntu packages fonts-dejavu-core "
                        "fonts-dejavu-extra (or fonts-liberation, fonts-freefont-ttf), or pass --fonts DIR")
    return [found[name] for name in PREFERRED if name in found]
