"""Window/level (VOI LUT) for display: presets, parsing, the DICOM linear function, dragging.

All centres and widths are in modality units (Hounsfield units for CT, stored values
otherwise), as in DICOM Window Center (0028,1050) / Window Width (0028,1051).
The display function is the "LINEAR" VOI LUT function of DICOM PS3.3 C.11.2.1.2.1, with
output range 0..255 (uint8 grey levels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

#: elements per block when windowing a 3D array (bounds the float32 temporary to ~16 MiB)
_BLOCK_ELEMENTS = 1 << 22
#: values sampled by auto_window on big arrays
_AUTO_SAMPLES = 1 << 20


@dataclass(frozen=True)
class WindowLevel:
    """A display window: ``center`` and ``width`` in modality units (HU for CT), width >= 1.

    DICOM PS3.3 C.11.2.1.2: Window Width shall be >= 1.
    """

    center: float
    width: float

    def __post_init__(self) -> None:
        center, width = float(self.center), float(self.width)
        if not (math.isfinite(center) and math.isfinite(width)):
            raise ValueError(f"window centre and width must be finite, got {center}, {width}")
        if width < 1:
            raise ValueError(f"window width must be >= 1, got {width:g}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "width", width)

    @property
    def lower(self) -> float:
        """Values <= this map to black (0): ``c - 0.5 - (w - 1) / 2``."""
        return self.center - 0.5 - (self.width - 1) / 2

    @property
    def upper(self) -> float:
        """Values > this map to white (255): ``c - 0.5 + (w - 1) / 2``."""
        return self.center - 0.5 + (self.width - 1) / 2

    def as_tuple(self) -> tuple[float, float]:
        """``(center, width)``, the form ``Volume.window`` uses."""
        return self.center, self.width

    def __str__(self) -> str:
        return f"C {self.center:g} / W {self.width:g}"


#: CT presets in HU; the order is the viewer's number keys 1..5.
PRESETS: MappingProxyType[str, WindowLevel] = MappingProxyType(
    {
        "lung": WindowLevel(-600, 1500),
        "mediastinum": WindowLevel(40, 400),
        "bone": WindowLevel(400, 1800),
        "brain": WindowLevel(40, 80),
        "abdomen": WindowLevel(50, 350),
    }
)


def parse_window(text: str) -> WindowLevel:
    """A preset name (any case, e.g. ``"Lung"``) or ``"C,W"`` (e.g. ``"-600,1500"``).

    Raises ValueError with a one-line message naming the valid presets.
    """
    cleaned = str(text).strip()
    preset = PRESETS.get(cleaned.lower())
    if preset is not None:
        return preset
    parts = cleaned.split(",")
    if len(parts) == 2:
        try:
            center, width = float(parts[0]), float(parts[1])
        except ValueError:
            problem = "centre and width must be numbers"
        else:
            if math.isfinite(center) and math.isfinite(width) and width >= 1:
                return WindowLevel(center, width)
            problem = "centre and width must be finite and width >= 1"
    else:
        problem = "unknown window"
    raise ValueError(
        f"{problem}: {text!r}; use a preset ({', '.join(PRESETS)}) "
        "or CENTER,WIDTH such as -600,1500"
    )


def apply_window(
    array: np.ndarray,
    wl: WindowLevel,
    invert: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Grey levels (uint8, same shape) of modality values through a linear window.

    DICOM PS3.3 C.11.2.1.2.1 with y in 0..255: ``x <= c - 0.5 - (w-1)/2 -> 0``,
    ``x > c - 0.5 + (w-1)/2 -> 255``, otherwise ``((x - (c - 0.5)) / (w - 1) + 0.5) * 255``
    rounded to the nearest grey level. ``w == 1`` is a threshold at ``c - 0.5``.
    ``invert`` gives ``255 - y`` (MONOCHROME1, or the user's invert). NaN maps to 0
    (255 inverted). Works elementwise on any shape; the arithmetic is float32 in blocks of
    at most ~4M elements, so a 2D slice costs one float32 temporary of its own size and a
    whole volume never gets a full-size temporary.

    ``out``: optional uint8 array of the same shape to write into (returned).
    """
    array = np.asarray(array)
    if out is None:
        out = np.empty(array.shape, dtype=np.uint8)
    elif out.shape != array.shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 with shape {array.shape}, got {out.dtype} {out.shape}")
    if array.ndim >= 3 and array.size > _BLOCK_ELEMENTS:
        step = max(1, _BLOCK_ELEMENTS // max(1, array[0].size))
        for start in range(0, array.shape[0], step):
            _window_block(array[start : start + step], out[start : start + step], wl, invert)
    else:
        _window_block(array, out, wl, invert)
    return out


def _window_block(src: np.ndarray, dst: np.ndarray, wl: WindowLevel, invert: bool) -> None:
    if wl.width == 1:  # the linear part is empty: a threshold
        np.copyto(dst, np.where(src > wl.center - 0.5, np.uint8(255), np.uint8(0)))
    else:
        scale = 255.0 / (wl.width - 1)
        offset = 127.5 - (wl.center - 0.5) * scale
        tmp = np.multiply(src, np.float32(scale), dtype=np.float32, casting="unsafe")
        tmp += np.float32(offset)
        np.fmax(tmp, np.float32(0), out=tmp)  # fmax/fmin also turn NaN into 0
        np.fmin(tmp, np.float32(255), out=tmp)
        np.rint(tmp, out=tmp)
        np.copyto(dst, tmp, casting="unsafe")
    if invert:
        np.subtract(np.uint8(255), dst, out=dst)


def window_from_drag(
    wl: WindowLevel, dx: float, dy: float, sensitivity: float = 0.005
) -> WindowLevel:
    """The window after a right-button drag of ``(dx, dy)`` screen pixels.

    ``dx > 0`` (right) widens the window: ``width * exp(sensitivity * dx)``, so the same
    gesture changes the width by the same factor for CT (W 400) and radiographs (W 4000),
    and dragging back restores it. ``dy > 0`` (down, screen y) raises the level (darker):
    ``center + sensitivity * dy * width``. Pass the window at the press and the total
    displacement since the press, so the result does not depend on the mouse path.
    ``sensitivity``: fraction of the width per pixel (default 0.005: 200 px ~ a factor e).
    """
    width = max(1.0, wl.width * math.exp(sensitivity * dx))
    center = wl.center + sensitivity * dy * wl.width
    return WindowLevel(center, width)


def auto_window(array: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> WindowLevel:
    """A robust window for an image that comes without one.

    The ``low_pct``..``high_pct`` percentiles of the finite values (a fixed-seed random
    sample of 1M values for big arrays) become exactly black..white under
    :func:`apply_window`. A constant image gets width 1 centred just above its value.
    """
    array = np.asarray(array)
    if array.size > _AUTO_SAMPLES:
        rng = np.random.default_rng(0)
        sample = array[np.unravel_index(rng.integers(0, array.size, _AUTO_SAMPLES), array.shape)]
    else:
        sample = array.reshape(-1)
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return WindowLevel(0.5, 1.0)
    lo, hi = (float(v) for v in np.percentile(sample, [low_pct, high_pct]))
    # lower = c - 0.5 - (w-1)/2 = lo and upper = c - 0.5 + (w-1)/2 = hi
    return WindowLevel((lo + hi) / 2 + 0.5, max(1.0, hi - lo + 1))
