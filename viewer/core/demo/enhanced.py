"""Multi-frame modules of the Enhanced CT / Enhanced MR Image IODs (DICOM PS3.3 A.38, A.36).

Used by :func:`viewer.core.demo.writer.write_series` with ``multiframe=True``. Adds the
Enhanced General Equipment, Multi-frame Functional Groups (C.7.6.16), Multi-frame Dimension
(C.7.6.17) and Enhanced CT/MR Image modules to a dataset that already holds the patient,
study, series, frame-of-reference and image-pixel modules.

Frames: frame ``f`` (0-based, in file order) holds slice ``frame_order[f]`` of the volume;
its *Plane Position (Patient)* is ``positions[frame_order[f]]`` (LPS, mm) and its
*In-Stack Position Number* is ``frame_order[f] + 1``, so a reader that sorts frames by
stack position (or by position along the normal) recovers array order ``k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

__all__ = ["add_multiframe_modules"]

_FRAME_CONTENT = Tag("FrameContentSequence")


def _item(**elements: object) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _dimension_index(organization_uid: str) -> DicomSequence:
    """Dimensions Stack ID and In-Stack Position Number (PS3.3 C.7.6.17)."""
    return DicomSequence([
        _item(DimensionOrganizationUID=organization_uid,
              DimensionIndexPointer=Tag("StackID"), FunctionalGroupPointer=_FRAME_CONTENT,
              DimensionDescriptionLabel="Stack ID"),
        _item(DimensionOrganizationUID=organization_uid,
              DimensionIndexPointer=Tag("InStackPositionNumber"),
              FunctionalGroupPointer=_FRAME_CONTENT,
              DimensionDescriptionLabel="In-Stack Position Number"),
    ])


def add_multiframe_modules(
    ds: Dataset,
    *,
    modality: str,
    positions: np.ndarray,
    frame_order: np.ndarray,
    iop: Sequence[object],
    pixel_spacing: tuple[float, float],
    slice_thickness: float,
    intercept: float,
    slope: float,
    rescale_type: str,
    windows: list[tuple[float, float, str]],
    ds_factory: Callable[[float], object],
    uid_factory: Callable[..., str],
) -> None:
    """Add the multi-frame modules to ``ds`` in place.

    positions: ``(n, 3)`` LPS positions (mm) of the top-left pixel of each slice, in array
        order ``k``.
    frame_order: permutation; frame ``f`` in the file is slice ``frame_order[f]``.
    iop: *Image Orientation (Patient)*, six direction cosines (row direction, column
        direction).
    pixel_spacing: ``(row spacing, column spacing)`` in mm (PS3.3 C.7.6.2.1.1).
    slice_thickness: mm; also written as *Spacing Between Slices* in the Pixel Measures
        macro, which GDCM uses for the third spacing.
    intercept, slope, rescale_type: the Pixel Value Transformation (C.7.6.16.2.9).
    windows: ``(center, width, explanation)`` presets in rescaled units.
    """
    n = len(frame_order)
    D = ds_factory
    datetime = f"{ds.ContentDate}{ds.ContentTime}"
    ds.NumberOfFrames = n
    is_ct = modality == "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if is_ct else "VOLUME", "NONE"]
    # Enhanced CT / MR Image module
    ds.AcquisitionDateTime = datetime
    ds.AcquisitionDuration = 1.0
    ds.ContentQualification = "PRODUCT"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.AcquisitionContextSequence = DicomSequence()
    if not is_ct:
        ds.ComplexImageComponent = "MAGNITUDE"
        ds.AcquisitionContrast = "T1"
        ds.ResonantNucleus = "1H"
        ds.MagneticFieldStrength = D(1.5)
        ds.ApplicableSafetyStandardAgency = "IEC"
        ds.ImageComments = "synthetic"
    for keyword in ("AcquisitionDate", "AcquisitionTime", "AcquisitionNumber"):
        if keyword in ds:
            delattr(ds, keyword)

    # Multi-frame Dimension module
    org_uid = uid_factory("dimension-organization", ds.SeriesInstanceUID)
    ds.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=org_uid)])
    ds.DimensionOrganizationType = "3D"
    ds.DimensionIndexSequence = _dimension_index(org_uid)

    # Shared functional groups
    frame_type = list(ds.ImageType)
    type_item = _item(
        FrameType=frame_type, PixelPresentation="MONOCHROME", VolumetricProperties="VOLUME",
        VolumeBasedCalculationTechnique="NONE",
    )
    if not is_ct:
        type_item.ComplexImageComponent = "MAGNITUDE"
        type_item.AcquisitionContrast = "T1"
    shared = _item(
        PixelMeasuresSequence=DicomSequence([_item(
            PixelSpacing=[D(pixel_spacing[0]), D(pixel_spacing[1])],
            SliceThickness=D(slice_thickness),
            SpacingBetweenSlices=D(slice_thickness),
        )]),
        PlaneOrientationSequence=DicomSequence([_item(ImageOrientationPatient=list(iop))]),
        PixelValueTransformationSequence=DicomSequence([_item(
            RescaleIntercept=D(intercept), RescaleSlope=D(slope), RescaleType=rescale_type,
        )]),
        FrameVOILUTSequence=DicomSequence([_item(
            WindowCenter=[D(c) for c, _, _ in windows],
            WindowWidth=[D(w) for _, w, _ in windows],
            WindowCenterWidthExplanation=[e for _, _, e in windows],
        )]),
        FrameAnatomySequence=DicomSequence([_item(
            FrameLaterality="U",
            AnatomicRegionSequence=DicomSequence([_item(
                CodeValue="51185008", CodingSchemeDesignator="SCT", CodeMeaning="Thorax",
            )]),
        )]),
    )
    setattr(shared, "CTImageFrameTypeSequence" if is_ct else "MRImageFrameTypeSequence",
            DicomSequence([type_item]))
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    # Per-frame functional groups
    per_frame = []
    for f in range(n):
        k = int(frame_order[f])
        content = _item(
            StackID="1", InStackPositionNumber=k + 1, DimensionIndexValues=[1, k + 1],
            FrameAcquisitionNumber=1, FrameAcquisitionDateTime=datetime,
            FrameReferenceDateTime=datetime, FrameAcquisitionDuration=1.0,
        )
        per_frame.append(_item(
            FrameContentSequence=DicomSequence([content]),
            PlanePositionSequence=DicomSequence([_item(
                ImagePositionPatient=[D(v) for v in positions[k]],
            )]),
        ))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
