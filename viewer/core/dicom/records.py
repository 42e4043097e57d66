"""What the header scan records: one :class:`FileHeader` a file, one :class:`SliceHeader` a plane.

Small plain records (no pydicom dataset is kept), so a scan of tens of thousands of files
stays a few hundred bytes a plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass(slots=True)
class FileHeader:
    """What one DICOM file says about itself (values shared by all its frames)."""

    path: str
    sop_uid: str
    sop_class: str
    series_uid: str
    study_uid: str
    patient_name: str
    patient_id: str
    modality: str
    description: str
    study_description: str
    study_date: str
    series_number: int | None
    rows: int
    columns: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    number_of_frames: int
    #: byte offset and length of native (uncompressed little-endian) pixel data, else None
    pixel_offset: int | None = None
    pixel_length: int | None = None
    #: byte offset of encapsulated (compressed) pixel data: its Basic Offset Table item
    frames_offset: int | None = None
    planar_configuration: int = 0
    window: tuple[float, float] | None = None
    gantry_tilt: float = 0.0
    spacing_between_slices: float | None = None
    #: a Modality LUT Sequence replaces the linear rescale (PS3.3 C.11.1)
    has_modality_lut: bool = False

    @property
    def is_native(self) -> bool:
        return self.pixel_offset is not None


@dataclass(slots=True)
class SliceHeader:
    """One image plane: a single-frame file, or one frame of a multi-frame file."""

    file: FileHeader
    frame: int
    position: tuple[float, float, float] | None  # ImagePositionPatient, LPS mm
    orientation: tuple[float, ...] | None  # ImageOrientationPatient, 6 cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    slice_thickness: float | None
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int | None = None
    acquisition_number: int | None = None
    echo_number: float | None = None
    temporal_position: int | None = None
    extra_keys: tuple = field(default_factory=tuple)
