"""Draw resources/icons/radview.png (256x256 RGBA), the raster twin of radview.svg, and
radview.ico (the same PNG in an ICO container, for the Windows executable and installer).

Same shapes as the SVG (a rounded dark tile, two lungs, the trachea, a crosshair), drawn
with numpy and written with SimpleITK, so no SVG renderer is needed to build the package.
Run: ``.venv/bin/python installer/make_icon_png.py``.
"""

import struct
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SIZE = 256


def draw() -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    # rounded tile 8..248, radius 40
    cx = np.clip(x, 48, 208)
    cy = np.clip(y, 48, 208)
    tile = (x >= 8) & (x <= 248) & (y >= 8) & (y <= 248) & ((x - cx) ** 2 + (y - cy) ** 2 <= 40**2)
    rgba[tile] = (0x1B, 0x2A, 0x3A, 255)
    lungs = (((x - 88) / 44) ** 2 + ((y - 136) / 76) ** 2 <= 1) | (
        ((x - 168) / 44) ** 2 + ((y - 136) / 76) ** 2 <= 1
    )
    lungs |= (x >= 122) & (x <= 134) & (y >= 40) & (y <= 110)
    rgba[lungs] = (0xD9, 0xE4, 0xEE, 255)
    cross = ((abs(x - 128) <= 3) & (y >= 24) & (y <= 232)) | (
        (abs(y - 136) <= 3) & (x >= 24) & (x <= 232)
    )
    rgba[cross] = (0xF2, 0xB1, 0x34, 255)
    return rgba


def write_ico(png: Path, out: Path) -> None:
    """An ICO holding one 256x256 PNG image (Windows Vista and later read these)."""
    data = png.read_bytes()
    header = struct.pack("<HHH", 0, 1, 1)  # reserved, type 1 = icon, one image
    # width/height 0 = 256, no palette, reserved, 1 plane, 32 bits, size, offset
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(data), 6 + 16)
    out.write_bytes(header + entry + data)


if __name__ == "__main__":
    folder = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parents[1] / "resources" / "icons"
    )
    png = folder / "radview.png"
    sitk.WriteImage(sitk.GetImageFromArray(draw(), isVector=True), str(png))
    write_ico(png, folder / "radview.ico")
    print(f"wrote {png} and radview.ico")
