"""Volume: a read-only voxel array with its geometry and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viewer.core.geometry import VolumeGeometry


@dataclass
class Volume:
    """One image stack in LPS millimetres.

    ``array`` is indexed (k, j, i) for grayscale, or (k, j, i, c) for colour (RGB, uint8 or
    uint16). Values are modality values: Hounsfield units for CT (rescale applied), stored
    values otherwise. MONOCHROME1 images keep their values; ``invert_display`` tells the
    display to invert so that a radiograph looks as a radiologist expects (bone white).
    The array is made read-only: edits go to label maps, never to the image.
    """

    array: np.ndarray
    geometry: VolumeGeometry
    modality: str = ""
    description: str = ""
    series_uid: str = ""
    invert_display: bool = False
    #: default window (centre, width) in modality units, from the file or the modality
    window: tuple[float, float] | None = None
    #: absolute source paths in slice order (one per k for single-frame series)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: selected header values of the first image (patient, study...), plain Python values
    header: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.shape[:3] != self.geometry.shape:
            raise ValueError(
                f"array shape {self.array.shape} does not match geometry {self.geometry.shape}"
            )
        self.array.setflags(write=False)

    @property
    def is_color(self) -> bool:
        return self.array.ndim == 4

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)
