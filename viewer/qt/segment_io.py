"""SegmentIO: import and export of the session's segmentation (logic + file dialogs).

Logic functions run without a widget and raise ValueError/OSError with a one-line message:

* :meth:`export_seg` (DICOM SEG, highdicom), :meth:`export_nifti` (``.nii``/``.nii.gz`` +
  sidecar JSON), :meth:`export_png` (overlay of one slice, as windowed on screen),
  :meth:`export_quantification` (``.csv`` or ``.json``);
* :meth:`import_file`: a DICOM SEG, a label volume (NIfTI, NRRD, MetaImage) or a PNG label
  image on the open series' grid. Into an empty segmentation the file is taken as it is
  (names, colours, provenance); into one that holds voxels it is merged as ONE undo step:
  imported segments are matched by name (new ones added) and overwrite every voxel but
  those of locked segments.

Every writer is atomic and refuses the source series' folders (``check_destination``). The
``choose_*`` methods ask for a path (the dialog starts in the last export folder, kept in
QSettings, or the home folder, never a source folder), run the write on a worker thread on
a snapshot of the labels, and report errors as a non-modal message.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from viewer.core.export.atomic import source_dirs
from viewer.core.history import diff_edit
from viewer.core.labelmap import LabelMap, full_bbox

EXPORT_DIR_KEY = "segment/export_dir"
IMPORT_DIR_KEY = "segment/import_dir"

#: kind -> (dialog title, file filter, default suffix)
EXPORTS = {
    "seg": ("Export DICOM SEG", "DICOM SEG (*.dcm)", ".seg.dcm"),
    "nifti": ("Export NIfTI label volume", "NIfTI (*.nii.gz *.nii)", ".nii.gz"),
    "png": ("Export PNG overlay of the slice", "PNG image (*.png)", ".png"),
    "quant": ("Export quantification", "CSV table (*.csv);;JSON (*.json)", ".csv"),
}
IMPORT_FILTER = "Segmentations (*.dcm *.nii *.nii.gz *.nrrd *.mha *.mhd *.png);;All files (*)"


#: kind -> file endings the writer accepts
ENDINGS = {
    "seg": (".dcm",),
    "nifti": (".nii", ".nii.gz"),
    "png": (".png",),
    "quant": (".csv", ".json"),
}


def with_suffix(kind: str, path: str, chosen_filter: str = "") -> str:
    """``path`` with the export's file ending added when it has none of the accepted ones
    (quantification: .json when the JSON filter was chosen, else .csv)."""
    if path.lower().endswith(ENDINGS[kind]):
        return path
    if kind == "quant":
        return path + (".json" if "json" in chosen_filter.lower() else ".csv")
    return path + EXPORTS[kind][2]


def snapshot(labelmap: LabelMap) -> LabelMap:
    """A copy of ``labelmap`` (labels, segments, provenance) for a worker thread."""
    p = labelmap.provenance
    return LabelMap(
        labelmap.geometry,
        labelmap.labels.copy(),
        dict(labelmap.segments),
        replace(p, extra=dict(p.extra)),
    )


def _is_dicom(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as exc:
        raise ValueError(f"cannot read {os.path.basename(path)}: {exc.strerror}") from exc
    return head[128:132] == b"DICM" or path.lower().endswith(".dcm")


class SegmentIO:
    #: a viewer.core.anonymize.Anonymizer: SEG and NIfTI sidecar exports are de-identified
    #: with it (File > Anonymise mask exports, viewer.qt.anonymize_export); None: as they are
    anonymizer = None

    def __init__(self, controller) -> None:
        self.controller = controller
        self.window = controller.window
        self.session = controller.session

    snapshot = staticmethod(snapshot)

    # -- logic ----------------------------------------------------------------------------
    def _content(self, labelmap: LabelMap | None = None):
        volume = self.session.volume
        labelmap = labelmap if labelmap is not None else self.session.labelmap
        if volume is None:
            raise ValueError("open an image first")
        if labelmap is None or not labelmap.labels.any():
            raise ValueError("the segmentation is empty: paint or run a model first")
        return volume, labelmap

    def export_seg(self, path, labelmap: LabelMap | None = None) -> Path:
        """DICOM SEG of the segmentation, referencing the open series' instances."""
        from viewer.core.export.dicom_seg import write_seg

        volume, labelmap = self._content(labelmap)
        description = (
            f"SEG {volume.description}".strip()[:64]
            if volume.description
            else "radview segmentation"
        )
        if self.anonymizer is not None:
            from viewer.core.anonymize.exports import write_seg_anonymized

            return write_seg_anonymized(labelmap, volume, path, self.anonymizer)
        return write_seg(labelmap, volume, path, series_description=description)

    def export_nifti(self, path, labelmap: LabelMap | None = None) -> Path:
        """Label volume (NIfTI, same header as ``radview convert``) and its sidecar JSON."""
        from viewer.core.export.label_files import write_label_nifti

        volume, labelmap = self._content(labelmap)
        if self.anonymizer is not None:
            from viewer.core.anonymize.exports import write_label_nifti_anonymized

            return write_label_nifti_anonymized(labelmap, path, volume, self.anonymizer)
        return write_label_nifti(labelmap, path, volume=volume)

    def export_png(self, path, labelmap: LabelMap | None = None, k: int | None = None) -> Path:
        """The image slice ``k`` (default: the one shown in the axial or image view) with
        the segments, windowed as on screen."""
        from viewer.core.export.label_files import write_overlay_png

        volume, labelmap = self._content(labelmap)
        k = self.shown_slice() if k is None else int(k)
        wl = self.session.window
        return write_overlay_png(volume, labelmap, path, k, window=(wl.center, wl.width))

    def export_quantification(self, path, labelmap: LabelMap | None = None) -> Path:
        """The quantification table as CSV (``.csv``) or JSON (``.json``)."""
        from viewer.core.export.atomic import check_destination
        from viewer.core.quantify import quantify, write_csv, write_json

        volume, labelmap = self._content(labelmap)
        suffix = Path(path).suffix.lower()
        if suffix not in (".csv", ".json"):
            raise ValueError(f"quantification is written as .csv or .json, not {suffix or path}")
        out = check_destination(path, source_dirs(volume.files))
        (write_csv if suffix == ".csv" else write_json)(quantify(labelmap), out)
        return out

    def shown_slice(self) -> int:
        """k of the slice shown in the axial view (0 for a single image)."""
        volume = self.session.volume
        if volume.geometry.shape[0] == 1:
            return 0
        view = self.window.views.viewports["axial"].slice_view
        if view is None or view.axis.array_axis != 0:
            return volume.geometry.shape[0] // 2
        return view.slice_index()

    def read(self, path, volume=None, k: int | None = None) -> LabelMap:
        """A label map read from ``path`` on ``volume``'s grid (default: the open one; not
        applied). A PNG label image goes to slice ``k`` (default: the one shown)."""
        volume = volume if volume is not None else self.session.volume
        if volume is None:
            raise ValueError("open the image the segmentation belongs to first")
        path = os.fspath(path)
        lower = path.lower()
        if lower.endswith(".png"):
            from viewer.core.export.label_files import read_label_png

            return read_label_png(path, volume, self.shown_slice() if k is None else k)
        if lower.endswith((".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")) or not _is_dicom(path):
            from viewer.core.export.label_files import read_label_volume

            return read_label_volume(path, volume)
        from viewer.core.export.dicom_seg import read_seg

        return read_seg(path, volume)

    def import_file(self, path) -> str:
        """Read ``path`` and take it into the session (see the module docstring); returns a
        one-line summary."""
        imported = self.read(path)
        return self.apply_import(imported, os.path.basename(os.fspath(path)))

    def apply_import(self, imported: LabelMap, name: str) -> str:
        current = self.session.labelmap
        count = len(imported.counts())
        if current is None or not current.labels.any():
            self.session.set_labelmap(imported)
            return f"Imported {count} segment(s) from {name}"
        lut = np.zeros(256, dtype=np.uint8)
        for value, segment in imported.segments.items():
            label = current.label_of(segment.name)
            if label is None:
                label = current.add_segment(segment.name, replace(segment, locked=False))
            lut[value] = label
        incoming = lut[imported.labels]
        locked = np.zeros(256, dtype=bool)
        locked[current.locked_labels()] = True
        target = np.where((incoming != 0) & ~locked[current.labels], incoming, current.labels)
        edit = diff_edit(current.labels, full_bbox(current.shape), target)
        if edit is not None:
            self.controller.stack.apply(edit, f"Import {name}")
        return f"Merged {count} segment(s) from {name} into the segmentation"

    # -- dialogs --------------------------------------------------------------------------
    def start_dir(self, key: str = EXPORT_DIR_KEY) -> str:
        """The remembered folder when it still exists and is not a source folder, else ~."""
        settings = self.window.settings
        remembered = str(settings.value(key, "") or "")
        volume = self.session.volume
        sources = source_dirs(volume.files) if volume is not None else []
        if remembered and os.path.isdir(remembered):
            real = os.path.realpath(remembered)
            if not any(
                real == os.path.realpath(s) or real.startswith(os.path.realpath(s) + os.sep)
                for s in sources
            ):
                return remembered
        return str(Path.home())

    def default_name(self, kind: str) -> str:
        volume = self.session.volume
        base = (volume.description if volume is not None else "") or "segmentation"
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("_") or "segmentation"
        return base + EXPORTS[kind][2]

    def choose_export(self, kind: str) -> None:
        """Ask for a file and export ``kind`` (seg, nifti, png, quant) on a worker thread."""
        title, filters, _suffix = EXPORTS[kind]
        try:
            self._content()
        except ValueError as exc:
            self.window.show_error(str(exc))
            return
        start = os.path.join(self.start_dir(), self.default_name(kind))
        path, chosen = QFileDialog.getSaveFileName(self.window, title, start, filters)
        if not path:
            return
        path = with_suffix(kind, path, chosen)
        self.run_export(kind, path)

    def run_export(self, kind: str, path: str) -> None:
        """Export on a worker thread from a snapshot; the result goes to the status bar."""
        writer = {
            "seg": self.export_seg,
            "nifti": self.export_nifti,
            "png": self.export_png,
            "quant": self.export_quantification,
        }[kind]
        copy = snapshot(self.session.labelmap)
        # SEG and NIfTI hold every label: once written, the autosave journal may go
        token = self.controller.autosave.save_point() if kind in ("seg", "nifti") else None
        k = self.shown_slice() if kind == "png" else None
        self.controller.message.emit(f"Exporting {os.path.basename(path)}\u2026")

        def work(_progress, _cancelled):
            if kind == "png":
                return writer(path, copy, k)
            return writer(path, copy)

        def done(out) -> None:
            self.window.settings.setValue(EXPORT_DIR_KEY, os.path.dirname(os.fspath(out)))
            if token is not None:
                self.controller.autosave.mark_saved(token)
            self.controller.message.emit(f"Saved {out}")

        self.window.tasks.run(
            work,
            on_finished=done,
            on_failed=lambda msg: self.window.show_error(f"Export failed: {msg}"),
        )

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Import segmentation", self.start_dir(IMPORT_DIR_KEY), IMPORT_FILTER
        )
        if not path:
            return
        volume = self.session.volume
        if volume is None:
            self.window.show_error("Open the image the segmentation belongs to first")
            return
        k = self.shown_slice()
        self.controller.message.emit(f"Reading {os.path.basename(path)}\u2026")

        def done(imported: LabelMap) -> None:
            if self.session.volume is not volume:
                return  # another image was opened meanwhile
            try:
                summary = self.apply_import(imported, os.path.basename(path))
            except ValueError as exc:
                self.window.show_error(f"Import failed: {exc}")
                return
            self.window.settings.setValue(IMPORT_DIR_KEY, os.path.dirname(path))
            self.controller.message.emit(summary)

        self.window.tasks.run(  # reading a SEG or a NIfTI may take seconds: off the GUI
            lambda _p, _c: self.read(path, volume, k),
            on_finished=done,
            on_failed=lambda msg: self.window.show_error(f"Import failed: {msg}"),
        )
