"""Series thumbnails: the middle plane, windowed with the series' default window, <= 64 px.

Cheap on purpose: one plane is decoded (``decode_plane``), not the whole series, so the
browser can make hundreds of them in a worker. Pure numpy; the widget turns the uint8 array
into a QImage on the GUI thread.
"""

from __future__ import annotations

import numpy as np

from viewer.core.dicom.loaders import default_window
from viewer.core.dicom.pixels import decode_plane
from viewer.core.images import read_image_file
from viewer.core.study_index import SeriesEntry
from viewer.core.windowing import WindowLevel, apply_window

THUMBNAIL_PX = 64


def thumbnail_array(entry: SeriesEntry, size: int = THUMBNAIL_PX) -> np.ndarray:
    """uint8 (rows, columns) grey or (rows, columns, 3) RGB, longest side ``size`` pixels.

    The middle plane (k = n // 2) of the series in display orientation (rows top to
    bottom), with rescale slope/intercept applied, windowed with the file's window (or the
    modality default) and inverted for MONOCHROME1. The aspect ratio follows the pixel
    spacing. Raises on undecodable data; callers show no thumbnail then.
    """
    if entry.status.startswith("error"):
        raise ValueError(entry.status)
    if entry.image_path is not None:
        volume = read_image_file(entry.image_path)
        plane = volume.array[volume.array.shape[0] // 2]
        window = volume.window or default_window(volume.modality, plane)
        row_mm, col_mm = volume.geometry.spacing[1], volume.geometry.spacing[2]
        image = _to_uint8(plane, window, volume.invert_display)
    elif entry.stack is not None:
        s = entry.stack.slices[len(entry.stack.slices) // 2]
        f = s.file
        raw = decode_plane(f, s.frame)
        row_mm, col_mm = entry.stack.geometry.spacing[1], entry.stack.geometry.spacing[2]
        if raw.ndim == 3:  # colour: already RGB
            image = _to_uint8(raw, None, False)
        else:
            values = raw.astype(np.float32) * np.float32(s.slope) + np.float32(s.intercept)
            window = f.window or default_window(f.modality, values)
            image = _to_uint8(values, window, f.photometric == "MONOCHROME1")
    else:
        raise ValueError("series has no image data")
    return _shrink(image, size, float(row_mm), float(col_mm))


def _to_uint8(plane: np.ndarray, window, invert: bool) -> np.ndarray:
    if plane.ndim == 3:  # RGB: scale 16-bit down, keep 8-bit
        if plane.dtype == np.uint8:
            return plane
        top = float(plane.max()) or 1.0
        return np.clip(plane.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    center, width = window
    return apply_window(plane, WindowLevel(center, max(1.0, width)), invert=invert)


def _shrink(image: np.ndarray, size: int, row_mm: float, col_mm: float) -> np.ndarray:
    """Box-average down so the longest physical side is ``size`` pixels."""
    rows, cols = image.shape[:2]
    height_mm = rows * (row_mm if row_mm > 0 else 1.0)
    width_mm = cols * (col_mm if col_mm > 0 else 1.0)
    scale = size / max(height_mm, width_mm)
    out_rows = max(1, min(size, round(height_mm * scale)))
    out_cols = max(1, min(size, round(width_mm * scale)))
    r_edges = np.linspace(0, rows, out_rows + 1).astype(int)
    c_edges = np.linspace(0, cols, out_cols + 1).astype(int)
    # sum over each box (a box of one pixel when enlarging), then divide by its size
    acc = image.astype(np.float32)
    acc = np.add.reduceat(acc, np.minimum(r_edges[:-1], rows - 1), axis=0)
    acc = np.add.reduceat(acc, np.minimum(c_edges[:-1], cols - 1), axis=1)
    extra = (1,) * (image.ndim - 2)
    acc /= np.maximum(np.diff(r_edges), 1).astype(np.float32).reshape(-1, 1, *extra)
    acc /= np.maximum(np.diff(c_edges), 1).astype(np.float32).reshape(1, -1, *extra)
    return np.ascontiguousarray(np.clip(np.rint(acc), 0, 255).astype(np.uint8))
