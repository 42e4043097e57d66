"""LabelMap: one uint8 label per voxel on a Volume's geometry, plus its segment table.

A model (see DESIGN.md): it owns the label array and the segment descriptions and emits
signals after they change; it never renders or opens a dialog.

* ``labels``: uint8 array (k, j, i) with the volume's shape; 0 = background, n = segment n.
  A radiograph or a 2D picture is a volume with one slice (k = 1).
* ``segments``: ``{label: Segment}`` (name, RGB colour, SNOMED codes, display state).
* ``provenance``: how the labels were made: ``algorithm_type`` ``"AUTOMATIC"`` (a model),
  ``"SEMIAUTOMATIC"`` (a model's output edited by hand) or ``"MANUAL"``; model name/version.

Signals:

* ``changed(bbox)``: voxels changed inside ``bbox`` = ``((k0, k1), (j0, j1), (i0, i1))``,
  half-open index ranges; views re-upload only that region. ``None`` = everything.
* ``segments_changed()``: a segment was added, removed, renamed, recoloured, hidden, locked.

Writes go through :meth:`LabelMap.write` (used by ``editing`` and ``history``) so that the
provenance turns SEMIAUTOMATIC and ``changed`` fires exactly once per write.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from viewer.core.events import Signal
from viewer.core.geometry import VolumeGeometry

#: ((k0, k1), (j0, j1), (i0, i1)) half-open voxel index ranges
BBox = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM code sequence item): value, scheme designator, meaning."""

    value: str
    scheme: str
    meaning: str


# Codes (SNOMED CT, DICOM) used by DICOM SEG segment descriptions (CID 7150 categories,
# CID 7151/7152 types). Property category "Anatomical Structure" for lungs,
# "Morphologically Abnormal Structure" for findings.
ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
ABNORMAL_STRUCTURE = Code("49755003", "SCT", "Morphologically Abnormal Structure")
LUNG = Code("39607008", "SCT", "Lung")
RIGHT_LUNG = Code("3341006", "SCT", "Right lung")
LEFT_LUNG = Code("44029006", "SCT", "Left lung")
GROUND_GLASS = Code("112120", "DCM", "Ground glass opacity")  # CID 6102
CONSOLIDATION = Code("95436008", "SCT", "Lung consolidation")
TISSUE = Code("85756007", "SCT", "Tissue")


@dataclass(frozen=True)
class Segment:
    """One label's description and display state."""

    name: str
    color: tuple[int, int, int]
    category: Code = ANATOMICAL_STRUCTURE
    type: Code = TISSUE
    visible: bool = True
    opacity: float = 0.5
    locked: bool = False


#: well-known segments by name (lower case); the model labels map onto these
KNOWN_SEGMENTS: dict[str, Segment] = {
    "lung": Segment("lung", (128, 174, 128), ANATOMICAL_STRUCTURE, LUNG),
    "right lung": Segment("right lung", (128, 174, 128), ANATOMICAL_STRUCTURE, RIGHT_LUNG),
    "left lung": Segment("left lung", (111, 184, 210), ANATOMICAL_STRUCTURE, LEFT_LUNG),
    "ground-glass opacity": Segment(
        "ground-glass opacity", (241, 214, 69), ABNORMAL_STRUCTURE, GROUND_GLASS
    ),
    "consolidation": Segment("consolidation", (216, 101, 79), ABNORMAL_STRUCTURE, CONSOLIDATION),
}

_PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]  # fmt: skip


def segment_for(name: str, label: int) -> Segment:
    """The known segment of that name, or a new one with a palette colour."""
    known = KNOWN_SEGMENTS.get(name.strip().lower())
    if known is not None:
        return replace(known, name=name)
    return Segment(name, _PALETTE[(label - 1) % len(_PALETTE)])


@dataclass
class Provenance:
    """How the labels were made (DICOM SEG SegmentAlgorithmType and algorithm identity)."""

    algorithm_type: str = "MANUAL"  # AUTOMATIC | SEMIAUTOMATIC | MANUAL
    model_name: str = ""
    model_version: str = ""
    extra: dict = field(default_factory=dict)


def full_bbox(shape) -> BBox:
    return tuple((0, int(n)) for n in shape)  # type: ignore[return-value]


def bbox_slices(bbox: BBox) -> tuple[slice, slice, slice]:
    return tuple(slice(a, b) for a, b in bbox)  # type: ignore[return-value]


def clip_bbox(bbox: BBox, shape) -> BBox | None:
    """``bbox`` clipped to the array; None when nothing is left."""
    out = []
    for (a, b), n in zip(bbox, shape, strict=True):
        a, b = max(0, int(a)), min(int(n), int(b))
        if b <= a:
            return None
        out.append((a, b))
    return tuple(out)  # type: ignore[return-value]


class LabelMap:
    """Labels on a volume's geometry; see the module docstring."""

    def __init__(
        self,
        geometry: VolumeGeometry,
        labels: np.ndarray | None = None,
        segments: dict[int, Segment] | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.geometry = geometry
        if labels is None:
            labels = np.zeros(geometry.shape, dtype=np.uint8)
        labels = np.ascontiguousarray(labels)
        if labels.shape != geometry.shape:
            raise ValueError(f"labels shape {labels.shape} does not match {geometry.shape}")
        if labels.dtype != np.uint8:
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError("labels must be within 0..255")
            labels = labels.astype(np.uint8)
        self.labels = labels
        self.segments: dict[int, Segment] = dict(segments or {})
        for value in np.unique(labels):
            if value and int(value) not in self.segments:
                self.segments[int(value)] = segment_for(f"segment {int(value)}", int(value))
        self.provenance = provenance or Provenance()
        self.changed = Signal("changed")
        self.segments_changed = Signal("segments_changed")

    @classmethod
    def from_names(
        cls,
        geometry: VolumeGeometry,
        labels: np.ndarray,
        names: dict[int, str],
        provenance: Provenance | None = None,
    ) -> LabelMap:
        """A label map whose segments are named (known names get their codes/colours)."""
        segments = {int(k): segment_for(v, int(k)) for k, v in names.items() if int(k) != 0}
        return cls(geometry, labels, segments, provenance)

    # -- listeners -------------------------------------------------------------------------
    def watch(self, on_changed, on_segments_changed) -> None:
        """Connect a view's two slots (``changed(bbox)``, ``segments_changed()``)."""
        self.changed.connect(on_changed)
        self.segments_changed.connect(on_segments_changed)

    def unwatch(self, on_changed, on_segments_changed) -> None:
        """Disconnect what :meth:`watch` connected; slots already gone are ignored."""
        pairs = ((self.changed, on_changed), (self.segments_changed, on_segments_changed))
        for signal, slot in pairs:
            try:
                signal.disconnect(slot)
            except ValueError:
                pass

    # -- segments --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    def add_segment(self, name: str, segment: Segment | None = None) -> int:
        """Add a segment with the next free label (1..255); returns the label."""
        free = [v for v in range(1, 256) if v not in self.segments]
        if not free:
            raise ValueError("no free label left (255 segments)")
        label = free[0]
        self.segments[label] = segment or segment_for(name, label)
        self.segments_changed.emit()
        return label

    def update_segment(self, label: int, **changes) -> None:
        """Change a segment's name, color, visible, opacity, locked, category or type."""
        self.segments[label] = replace(self.segments[label], **changes)
        self.segments_changed.emit()

    def remove_segment(self, label: int) -> None:
        """Drop a segment and clear its voxels (not undoable: the caller asks first)."""
        self.segments.pop(label)
        mask = self.labels == label
        if mask.any():
            self.labels[mask] = 0
            self.changed.emit(None)
        self.segments_changed.emit()

    def locked_labels(self) -> list[int]:
        return [v for v, s in self.segments.items() if s.locked]

    def label_of(self, name: str) -> int | None:
        for v, s in self.segments.items():
            if s.name.lower() == name.lower():
                return v
        return None

    # -- voxels ----------------------------------------------------------------------------
    def write(self, bbox: BBox, values: np.ndarray, *, edited: bool = True) -> None:
        """Replace the voxels of ``bbox`` by ``values`` (same shape) and emit ``changed``.

        ``edited`` marks the map SEMIAUTOMATIC when it came from a model (an undo/redo or a
        hand edit of a model's output is still a hand edit).
        """
        self.labels[bbox_slices(bbox)] = values
        if edited and self.provenance.algorithm_type == "AUTOMATIC":
            self.provenance.algorithm_type = "SEMIAUTOMATIC"
        self.changed.emit(bbox)

    def replace_all(self, labels: np.ndarray) -> None:
        """New voxels for the whole map (an import or a model result); emits changed(None)."""
        if labels.shape != self.labels.shape:
            raise ValueError(f"labels shape {labels.shape} does not match {self.labels.shape}")
        self.labels[...] = labels
        self.changed.emit(None)

    def counts(self) -> dict[int, int]:
        """Voxel count per non-zero label present."""
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True) if v}

    def names(self) -> dict[int, str]:
        return {v: s.name for v, s in sorted(self.segments.items())}
