"""Segmentation models for the segment editor: run one in the AI process and merge its
result into the open label map (rule :data:`MERGE_RULE`).

:class:`SegmentModels` is the part of :class:`~viewer.qt.segment_controller.SegmentController`
that lists the models of the AI controller's registry, runs one on a worker thread (the GUI
never waits; one AI process for the whole viewer) and merges its labels as ONE undo step.
It emits through the controller's signals (``models_changed``, ``busy_changed``,
``progress``); the controller's methods of the same names delegate to it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from viewer.core.history import diff_edit
from viewer.core.labelmap import (
    LEFT_LUNG,
    LUNG,
    RIGHT_LUNG,
    LabelMap,
    Provenance,
    bbox_slices,
)

MERGE_RULE = (
    "A model's labels are added to the open segmentation: they overwrite only background "
    "and (unlocked) lung voxels; other segments, locked ones and the model's background "
    "leave the voxels as they are."
)
LUNG_CODES = {LUNG.value, RIGHT_LUNG.value, LEFT_LUNG.value}


def is_lung(segment) -> bool:
    """A lung segment (left, right or both) by its SNOMED type, or by name."""
    return segment.type.value in LUNG_CODES or "lung" in segment.name.lower()


def merged_labels(labelmap: LabelMap, result: np.ndarray, names: dict[int, str]):
    """(bbox, values): the labels of ``bbox`` after adding a model's ``result`` (its values
    named by ``names``) following :data:`MERGE_RULE`; ``bbox`` is the box of the result's
    labelled voxels, None when it labelled nothing. Segments missing from the map are added
    (by name, so the known ones get their SNOMED codes); the map's voxels are not written
    here."""
    result = np.asarray(result)
    if result.shape != labelmap.shape:
        raise ValueError(f"model labels {result.shape} do not match the image {labelmap.shape}")
    lut = np.zeros(256, dtype=np.uint8)
    for value, name in sorted(names.items()):
        if int(value) == 0 or not name or name.lower() == "background":
            continue
        label = labelmap.label_of(name)
        lut[int(value)] = label if label is not None else labelmap.add_segment(name)
    box = []
    found = result != 0
    for axis in range(3):  # work in the box of the result only (findings are small)
        hit = np.flatnonzero(found.any(axis=tuple(a for a in range(3) if a != axis)))
        if hit.size == 0:
            return None, None
        box.append((int(hit[0]), int(hit[-1]) + 1))
    region = bbox_slices(tuple(box))
    incoming = lut[result[region].astype(np.uint8, copy=False)]
    writable = np.zeros(256, dtype=bool)
    writable[0] = True
    for value, segment in labelmap.segments.items():
        writable[value] = is_lung(segment) and not segment.locked
    current = labelmap.labels[region]
    take = (incoming != 0) & writable[current]
    return tuple(box), np.where(take, incoming, current)


class SegmentModels:
    """Model runs of a SegmentController ``controller`` (see the module docstring)."""

    def __init__(self, controller) -> None:
        self.controller = controller
        self.specs: list = []
        self._task = None

    def refresh(self) -> None:
        """List the segmentation models of the AI controller's registry."""
        ai = self.controller.window.ai
        if ai.registry is None:
            ai.refresh_models()
        self.specs = ai.registry.list_models("segmentation")
        self.controller.models_changed.emit(self.specs)

    def run(self, name: str) -> None:
        """Segment the open volume with model ``name`` in the AI process (worker thread);
        the result is merged (:data:`MERGE_RULE`) as one undo step."""
        c = self.controller
        volume = c.session.volume
        if volume is None or not name:
            c.busy_changed.emit(False, "Open an image first.")
            return
        if self._task is not None:
            return
        from ai.segment import volume_input

        ai = c.window.ai
        if ai.registry is None:
            ai.refresh_models()
        try:
            spec = ai.registry.get(name)
        except LookupError as exc:
            c.busy_changed.emit(False, str(exc))
            return
        if not ai.trust.ready(
            name, lambda: self.run(name), lambda m: c.busy_changed.emit(False, m)
        ):
            return  # asked for trust first (runs again if given) or refused with a message
        array, meta = volume_input(volume)
        client = ai.get_client()
        c.busy_changed.emit(
            True,
            f"Running {spec.name} {spec.version} on the whole image "
            "(the first run starts the AI process)\u2026",
        )

        def work(progress, cancelled):  # worker thread: the client blocks, not the GUI
            def fraction(f: float, _message: str = "") -> None:
                progress(int(round(100 * f)), 100)

            return client.segment_volume(array, meta, spec.name, fraction, cancelled)

        self._task = c.window.tasks.run(
            work,
            on_finished=lambda labels: self._done(spec, volume, labels),
            on_failed=self._failed,
            on_progress=c.progress.emit,
            on_cancelled=lambda: self._failed("Cancelled."),
        )

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None

    def _failed(self, message: str) -> None:
        self._task = None
        self.controller.busy_changed.emit(
            False, "Cancelled." if "Cancelled" in message else message
        )

    def _done(self, spec, volume, labels) -> None:
        self._task = None
        busy = self.controller.busy_changed
        if self.controller.session.volume is not volume:
            busy.emit(False, "The image changed while the model ran: result dropped")
            return
        try:
            changed = self.apply(spec.name, spec.version, labels, spec.labels)
        except ValueError as exc:
            busy.emit(False, str(exc))
            return
        busy.emit(False, f"{spec.name} {spec.version}: {changed} voxels labelled")

    def apply(self, model: str, version: str, labels, names: dict[int, str]) -> int:
        """Merge a model's label volume into the session's label map (one undo step named
        after the model); provenance AUTOMATIC with the model's name and version (joined
        with the earlier model's when the map held only another model's output, else
        SEMIAUTOMATIC). Returns the number of voxels that changed."""
        c = self.controller
        lm = c.ensure_labelmap()
        before = replace(lm.provenance)  # the write below turns AUTOMATIC into SEMIAUTOMATIC
        was_empty = not lm.labels.any()
        box, values = merged_labels(lm, labels, names)
        edit = diff_edit(lm.labels, box, values) if box is not None else None
        if edit is not None:
            c.stack.apply(edit, f"Run {model}")
        if was_empty or before.algorithm_type == "MANUAL" and not before.model_name:
            kind = "AUTOMATIC" if was_empty else "SEMIAUTOMATIC"
            lm.provenance = Provenance(kind, model, version)
        else:
            kind = "AUTOMATIC" if before.algorithm_type == "AUTOMATIC" else "SEMIAUTOMATIC"
            lm.provenance = Provenance(
                kind, f"{before.model_name} + {model}", f"{before.model_version} + {version}"
            )
        if c.active_label not in lm.segments and lm.segments:
            c.set_active(min(lm.segments))
        return edit.changed_voxels if edit is not None else 0
