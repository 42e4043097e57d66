"""Anonymised exports of what the viewer derives from a study: DICOM SEG, label volume
sidecar JSON, and the volume a screenshot is rendered from.

* :func:`write_seg_anonymized`: the SEG is built as usual from the open series (highdicom,
  :func:`viewer.core.export.dicom_seg.write_seg`) into a hidden temporary folder beside the
  destination, then de-identified with the same :class:`Anonymizer` (same key) as an
  anonymised copy of the series: its patient is the same pseudonym, its Study Instance UID,
  Frame of Reference UID and Referenced SOP Instance UIDs are the copy's, so the SEG lands
  on the anonymised images. The identified SEG never reaches the destination name and the
  temporary folder is removed in every case.
* :func:`write_label_nifti_anonymized`: the label NIfTI (no identity in it) with a sidecar
  whose ``source`` holds no folder path and the *mapped* UIDs (kept with ``keep_uids``).
* :func:`anonymized_volume`: the same voxels with the header values the corner text shows
  (patient name, ID, study date, descriptions) removed, for screenshots.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from viewer.core.anonymize.engine import Anonymizer
from viewer.core.anonymize.tree import anonymize_file
from viewer.core.export.atomic import check_destination, source_dirs, write_bytes_atomic
from viewer.core.labelmap import LabelMap
from viewer.core.volume import Volume

#: Volume.header keys that identify the patient or the study (the rest is technical)
IDENTIFYING_HEADER_KEYS = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "study_date",
    "study_time",
    "study_description",
    "study_uid",
    "accession_number",
    "institution_name",
    "referring_physician_name",
)


def anonymized_volume(volume: Volume) -> Volume:
    """``volume`` (same array, no copy) without identifying header values or description.

    The renderer's corner text then shows neither patient name, ID nor dates.
    """
    header = {k: v for k, v in volume.header.items() if k not in IDENTIFYING_HEADER_KEYS}
    return dataclasses.replace(volume, header=header, description="")


def write_seg_anonymized(
    labelmap: LabelMap,
    volume: Volume,
    path: str | os.PathLike,
    anonymizer: Anonymizer,
    *,
    allow_into_source: bool = False,
    **seg_options,
) -> Path:
    """Write ``labelmap`` as a DICOM SEG at ``path``, de-identified with ``anonymizer``.

    ``seg_options`` go to ``write_seg`` (series description...). Raises ``ValueError`` with
    a one-line reason, like ``write_seg``.
    """
    from viewer.core.export.dicom_seg import write_seg

    out = check_destination(path, source_dirs(volume.files), allow_into_source)
    with tempfile.TemporaryDirectory(prefix=".radview-seg-", dir=out.parent) as tmp:
        plain = write_seg(
            labelmap, volume, Path(tmp) / "seg.dcm", allow_into_source=True, **seg_options
        )
        anonymize_file(plain, out, anonymizer)
    return out


def anonymized_source(source: dict, anonymizer: Anonymizer) -> dict:
    """A sidecar's ``source`` block without the folder path, with the UIDs mapped."""
    out = dict(source)
    out["files_dir"] = ""
    for key in ("series_uid", "study_uid", "frame_of_reference_uid"):
        if out.get(key):
            base, _, stack = str(out[key]).partition("#")  # "uid#n": a split series' stack
            out[key] = anonymizer.uid(base) + (f"#{stack}" if stack else "")
    out["anonymized"] = True
    return out


def write_label_nifti_anonymized(
    labelmap: LabelMap,
    path: str | os.PathLike,
    volume: Volume,
    anonymizer: Anonymizer,
    *,
    allow_into_source: bool = False,
) -> Path:
    """Label NIfTI at ``path`` and its sidecar ``<stem>.json`` without identifying fields."""
    from viewer.core.export.label_files import (
        sidecar_document,
        sidecar_path,
        write_label_nifti,
    )

    out = write_label_nifti(
        labelmap, path, volume=volume, sidecar=False, allow_into_source=allow_into_source
    )
    doc = sidecar_document(labelmap, volume)
    doc["source"] = anonymized_source(doc["source"], anonymizer)
    text = json.dumps(doc, indent=2) + "\n"
    write_bytes_atomic(sidecar_path(out), text.encode("utf-8"))
    return out
