"""Undo/redo for label-map edits: a whole stroke is one step; steps store edits, not copies.

An :class:`Edit` is a small record (napari's paint atoms, DESIGN.md): a bounding box of the
label array and the label values inside it before (``old``) and after (``new``). Editing
operations (:mod:`viewer.core.editing`) compute edits cropped to the voxels that really
change and hand them to :meth:`UndoStack.apply`, which writes them through
:meth:`LabelMap.write` (so ``labelmap.changed(bbox)`` fires and a model's output turns
SEMIAUTOMATIC) and records them.

Grouping: everything applied between :meth:`UndoStack.begin` and :meth:`UndoStack.end` is
ONE undo step (a whole brush drag, a flood fill); groups may nest, the outermost one makes
the step. An edit applied outside a group is a step on its own. Undo and redo write the
step's union bounding box once, so ``labelmap.changed`` fires once per undo/redo with that
box.

Memory: the stack keeps at most ``max_bytes`` of edit arrays and drops the oldest steps
beyond that (the newest step is always kept, whatever its size). When a step is closed its
edits are merged into one edit over their union box if that is smaller (a long drag of
overlapping discs).

The stack must see every voxel change of its label map: a write that bypasses it (an
import, ``replace_all``, ``remove_segment``: they emit ``changed(None)``) makes the recorded
old values stale, so the stack clears itself when the label map emits ``changed(None)``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from viewer.core.events import Signal
from viewer.core.labelmap import BBox, LabelMap, bbox_slices

#: bookkeeping bytes charged per edit record on top of its arrays
_RECORD_OVERHEAD = 256


@dataclass(frozen=True, eq=False)
class Edit:
    """Label values of ``bbox`` (half-open (k, j, i) ranges) before and after an edit.

    ``old`` and ``new`` are uint8 arrays of the bbox's shape that own their data (never
    views of the label map).
    """

    bbox: BBox
    old: np.ndarray
    new: np.ndarray

    def __post_init__(self) -> None:
        bbox = tuple((int(a), int(b)) for a, b in self.bbox)
        shape = tuple(b - a for a, b in bbox)
        if len(bbox) != 3 or min(shape) <= 0 or min(a for a, _ in bbox) < 0:
            raise ValueError(f"edit bbox {self.bbox} is not a non-empty 3D box")
        for name in ("old", "new"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"edit {name} has shape {arr.shape}, bbox needs {shape}")
            if arr.dtype != np.uint8:
                object.__setattr__(self, name, arr.astype(np.uint8))
        object.__setattr__(self, "bbox", bbox)

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes) + _RECORD_OVERHEAD

    @property
    def changed_voxels(self) -> int:
        return int(np.count_nonzero(self.old != self.new))


def diff_edit(labels: np.ndarray, bbox: BBox, new: np.ndarray) -> Edit | None:
    """The edit that turns ``labels[bbox]`` into ``new``, cropped to the voxels that differ.

    None when nothing changes. ``new`` is not modified; the returned arrays are copies.
    """
    old = labels[bbox_slices(bbox)]
    diff = old != new
    if not diff.any():
        return None
    crop = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(diff.any(axis=other))
        crop.append((int(hit[0]), int(hit[-1]) + 1))
    local = tuple(slice(a, b) for a, b in crop)
    box = tuple((lo + a, lo + b) for (lo, _), (a, b) in zip(bbox, crop, strict=True))
    return Edit(box, old[local].copy(), np.array(new[local], dtype=np.uint8, copy=True))


def union_bbox(boxes) -> BBox:
    """Smallest box holding all ``boxes``."""
    boxes = list(boxes)
    return tuple(  # type: ignore[return-value]
        (min(b[axis][0] for b in boxes), max(b[axis][1] for b in boxes)) for axis in range(3)
    )


def _relative(box: BBox, frame: BBox) -> tuple[slice, slice, slice]:
    return tuple(slice(a - f, b - f) for (a, b), (f, _) in zip(box, frame, strict=True))  # type: ignore[return-value]


@dataclass
class _Step:
    name: str
    edits: list[Edit] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.edits)

    @property
    def bbox(self) -> BBox:
        return union_bbox(e.bbox for e in self.edits)


class UndoStack:
    """Undo/redo history of one label map; see the module docstring.

    ``changed()`` fires whenever ``can_undo``/``can_redo`` or the step names may have
    changed (enable or rename the Undo/Redo menu actions there).
    """

    def __init__(self, labelmap: LabelMap, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.labelmap = labelmap
        self.max_bytes = int(max_bytes)
        self.changed = Signal("history changed")
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._open: _Step | None = None
        self._depth = 0
        self._writing = False
        labelmap.changed.connect(self._on_labels_changed)

    # -- state -----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._open is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._open is None

    @property
    def undo_name(self) -> str:
        """Name of the step that undo() would revert ("" when none)."""
        return self._undo[-1].name if self._undo else ""

    @property
    def redo_name(self) -> str:
        return self._redo[-1].name if self._redo else ""

    @property
    def nbytes(self) -> int:
        """Bytes held by the recorded edits (undo and redo sides, open group included)."""
        steps = self._undo + self._redo + ([self._open] if self._open else [])
        return sum(s.nbytes for s in steps)

    @property
    def in_group(self) -> bool:
        return self._open is not None

    def __len__(self) -> int:
        """Number of undoable steps."""
        return len(self._undo)

    # -- recording -------------------------------------------------------------------------
    def begin(self, name: str) -> None:
        """Open a group: edits applied until the matching end() make one undo step."""
        if self._depth == 0:
            self._open = _Step(name)
        self._depth += 1

    def end(self) -> None:
        """Close the group opened by begin(); the outermost end() pushes the step (if any
        edit was applied)."""
        if self._depth == 0:
            raise RuntimeError("UndoStack.end() without begin()")
        self._depth -= 1
        if self._depth:
            return
        step, self._open = self._open, None
        if step is not None and step.edits:
            self._push(step)
        else:
            self.changed.emit()

    @contextmanager
    def group(self, name: str):
        """``with stack.group("Fill"):`` = begin(name) ... end(), also when an error rises."""
        self.begin(name)
        try:
            yield self
        finally:
            self.end()

    def apply(self, edit: Edit, name: str = "Edit") -> None:
        """Write ``edit.new`` into the label map and record the edit.

        Inside a group the edit joins the open step; otherwise it is a step named ``name``.
        Raises ValueError when ``edit.old`` is not what the label map holds (the edit was
        computed on stale labels and could not be undone exactly).
        """
        region = bbox_slices(edit.bbox)
        if any(b > n for (_, b), n in zip(edit.bbox, self.labelmap.shape, strict=True)):
            raise ValueError(
                f"edit bbox {edit.bbox} is outside the label map {self.labelmap.shape}"
            )
        if not np.array_equal(self.labelmap.labels[region], edit.old):
            raise ValueError("edit's old values do not match the label map (stale edit)")
        if np.may_share_memory(edit.old, self.labelmap.labels) or np.may_share_memory(
            edit.new, self.labelmap.labels
        ):
            edit = Edit(edit.bbox, edit.old.copy(), edit.new.copy())
        self._write(edit.bbox, edit.new)
        if self._open is not None:
            self._open.edits.append(edit)
        else:
            self._push(_Step(name, [edit]))

    def clear(self) -> None:
        """Forget every step (an open group stays open, emptied)."""
        self._undo.clear()
        self._redo.clear()
        if self._open is not None:
            self._open.edits.clear()
        self.changed.emit()

    # -- undo / redo -----------------------------------------------------------------------
    def undo(self) -> bool:
        """Revert the newest step; False when there is none. Not allowed inside a group."""
        self._check_closed("undo")
        if not self._undo:
            return False
        step = self._undo.pop()
        self._replay(step, reverse=True)
        self._redo.append(step)
        self.changed.emit()
        return True

    def redo(self) -> bool:
        """Re-apply the newest undone step; False when there is none."""
        self._check_closed("redo")
        if not self._redo:
            return False
        step = self._redo.pop()
        self._replay(step, reverse=False)
        self._undo.append(step)
        self.changed.emit()
        return True

    # -- internals -------------------------------------------------------------------------
    def _check_closed(self, what: str) -> None:
        if self._open is not None:
            raise RuntimeError(f"cannot {what} while the step {self._open.name!r} is open")

    def _replay(self, step: _Step, reverse: bool) -> None:
        """Write the step's old (reverse) or new values with one write of its union box."""
        box = step.bbox
        buf = self.labelmap.labels[bbox_slices(box)].copy()
        edits = reversed(step.edits) if reverse else step.edits
        for e in edits:
            buf[_relative(e.bbox, box)] = e.old if reverse else e.new
        self._write(box, buf)

    def _write(self, bbox: BBox, values: np.ndarray) -> None:
        self._writing = True
        try:
            self.labelmap.write(bbox, values)
        finally:
            self._writing = False

    def _push(self, step: _Step) -> None:
        self._compact(step)
        self._undo.append(step)
        self._redo.clear()
        total = sum(s.nbytes for s in self._undo)
        while len(self._undo) > 1 and total > self.max_bytes:
            total -= self._undo.pop(0).nbytes
        self.changed.emit()

    def _compact(self, step: _Step) -> None:
        """Merge the step's edits into one over their union box when that is smaller."""
        if len(step.edits) < 2:
            return
        box = step.bbox
        voxels = int(np.prod([b - a for a, b in box]))
        if 2 * voxels + _RECORD_OVERHEAD >= step.nbytes:
            return
        new = self.labelmap.labels[bbox_slices(box)].copy()
        old = new.copy()
        for e in reversed(step.edits):
            old[_relative(e.bbox, box)] = e.old
        merged = diff_edit(old, tuple((0, b - a) for a, b in box), new)
        if merged is None:  # the step's edits cancelled out; keep a no-op record
            step.edits = [Edit(box, old, new)]
            return
        offset = [a for a, _ in box]
        shifted = tuple((a + o, b + o) for (a, b), o in zip(merged.bbox, offset, strict=True))
        step.edits = [Edit(shifted, merged.old, merged.new)]

    def _on_labels_changed(self, bbox) -> None:
        if bbox is None and not self._writing:
            self.clear()
