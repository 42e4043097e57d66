"""Turn scanned image planes into geometrically consistent stacks.

Slices are sorted along the slice normal (the cross product of the ImageOrientationPatient
cosines, PS3.3 C.7.6.2.1.1), never by file name or InstanceNumber. A series whose planes
differ in orientation or size is split into separate stacks; planes that share a position
(echoes, time points, repeated acquisitions) become separate stacks too. Irregular spacing,
gaps and gantry tilt are reported as warnings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from viewer.core.dicom.limits import MAX_VOXELS, fmt_bytes
from viewer.core.dicom.records import Skipped, SliceHeader
from viewer.core.geometry import VolumeGeometry

POSITION_TOL_MM = 1e-3
__all__ = ["MAX_VOXELS", "POSITION_TOL_MM", "Stack", "plan_stacks"]


@dataclass
class Stack:
    """Planes in k order that form one volume (not decoded yet)."""

    series_uid: str
    slices: list[SliceHeader]
    geometry: VolumeGeometry
    uid: str = ""  # series UID, or "UID#n" for the n-th stack of a split series
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def first(self):
        return self.slices[0].file

    @property
    def components(self) -> int:
        f = self.first
        return 3 if f.samples == 3 or f.photometric.startswith("PALETTE") else 1

    @property
    def shape(self) -> tuple[int, ...]:
        s = self.geometry.shape
        return s + (3,) if self.components == 3 else s

    @property
    def files(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.slices:
            seen.setdefault(s.file.path, None)
        return list(seen)


def _round(values, step):
    return None if values is None else tuple(round(v / step) for v in values)


def _stack_key(s: SliceHeader):
    f = s.file
    if f.number_of_frames > 1:
        return ("file", f.path, _round(s.orientation, 1e-4))
    return (
        _round(s.orientation, 1e-4),
        f.rows,
        f.columns,
        f.samples,
        _round(s.pixel_spacing, 1e-4),
    )


def plan_stacks(slices: list[SliceHeader]) -> tuple[list[Stack], list[Skipped]]:
    """Group planes by series, split into consistent stacks, sort each along its normal."""
    by_series: dict[str, list[SliceHeader]] = defaultdict(list)
    for s in slices:
        by_series[s.file.series_uid].append(s)
    stacks: list[Stack] = []
    skipped: list[Skipped] = []
    for series_uid, members in by_series.items():
        members, dupes = _drop_duplicate_instances(members)
        skipped.extend(dupes)
        groups: dict[tuple, list[SliceHeader]] = defaultdict(list)
        for s in members:
            groups[_stack_key(s)].append(s)
        series_stacks: list[Stack] = []
        for group in groups.values():
            series_stacks.extend(_build(series_uid, group))
        series_stacks.sort(key=lambda st: -len(st.slices))
        for n, st in enumerate(series_stacks):
            st.uid = series_uid if n == 0 else f"{series_uid}#{n + 1}"
            if len(series_stacks) > 1:
                st.warnings.insert(
                    0,
                    f"series split into {len(series_stacks)} stacks "
                    f"(orientation, size or repeated positions differ); this is {n + 1}",
                )
        stacks.extend(series_stacks)
    return stacks, skipped


def _drop_duplicate_instances(members):
    seen: dict[tuple[str, int], str] = {}
    kept, skipped = [], []
    for s in members:
        key = (s.file.sop_uid, s.frame)
        if s.file.sop_uid and key in seen and seen[key] != s.file.path:
            if s.frame == 0:
                skipped.append(
                    Skipped(s.file.path, f"duplicate of {seen[key]} (same SOPInstanceUID)")
                )
            continue
        seen.setdefault(key, s.file.path)
        kept.append(s)
    return kept, skipped


def _normal(orientation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    row /= np.linalg.norm(row) or 1.0
    col /= np.linalg.norm(col) or 1.0
    normal = np.cross(row, col)
    return row, col, normal / (np.linalg.norm(normal) or 1.0)


def _build(series_uid: str, group: list[SliceHeader]) -> list[Stack]:
    spatial = all(s.position is not None and s.orientation is not None for s in group)
    if not spatial:
        return [_build_unpositioned(series_uid, group)]
    row, col, normal = _normal(group[0].orientation)
    dist = {id(s): float(np.dot(s.position, normal)) for s in group}

    def tie(s):
        return (
            s.echo_number or 0,
            s.temporal_position or 0,
            s.extra_keys,
            s.acquisition_number or 0,
            s.instance_number or 0,
            s.frame,
        )

    ordered = sorted(group, key=lambda s: (round(dist[id(s)] / POSITION_TOL_MM), tie(s)))
    # split planes sharing a position: the n-th plane at each position goes to stack n
    occurrences: list[list[SliceHeader]] = []
    last, count = None, 0
    for s in ordered:
        key = round(dist[id(s)] / POSITION_TOL_MM)
        count = count + 1 if key == last else 0
        last = key
        while len(occurrences) <= count:
            occurrences.append([])
        occurrences[count].append(s)
    stacks = [_spatial_stack(series_uid, planes, row, col, normal, dist) for planes in occurrences]
    if len(stacks) > 1:
        for st in stacks:
            st.warnings.append(
                f"{len(group)} planes share {len(occurrences[0])} positions: "
                f"split into {len(stacks)} stacks (echoes, phases or repeats)"
            )
    return stacks


def _spatial_stack(series_uid, planes, row, col, normal, dist) -> Stack:
    first = planes[0]
    (rs, cs), warnings = _pixel_spacing(first)
    d = np.array([dist[id(s)] for s in planes])
    slice_dir = normal
    if len(planes) > 1:
        steps = np.diff(d)
        median = float(np.median(steps))
        regular = bool(np.all(np.abs(steps - median) <= 0.01 * median + POSITION_TOL_MM))
        spacing = float((d[-1] - d[0]) / (len(planes) - 1)) if regular else median
        if not regular:
            warnings.append(
                f"irregular slice spacing: {steps.min():.3g} to {steps.max():.3g} mm "
                f"(median {median:.3g} mm used)"
            )
            gaps = steps > 1.5 * median
            if gaps.any():
                missing = int(np.sum(np.round(steps[gaps] / median) - 1))
                where = ", ".join(f"{d[i]:.1f}..{d[i + 1]:.1f}" for i in np.where(gaps)[0][:3])
                warnings.append(f"gap: about {missing} missing slice(s) at {where} mm")
        step = (np.asarray(planes[-1].position) - np.asarray(first.position)) / (len(planes) - 1)
        step_len = float(np.linalg.norm(step))
        if step_len > 0:
            cos = abs(float(np.dot(step / step_len, normal)))
            angle = float(np.degrees(np.arccos(min(1.0, cos))))
            if angle > 0.05:
                warnings.append(
                    f"gantry tilt {angle:.2f} degrees: slices are sheared "
                    "(geometry follows the slice positions)"
                )
                slice_dir = step / step_len
                spacing = step_len if regular else median / cos
    else:
        spacing = first.file.spacing_between_slices or first.slice_thickness or 1.0
    if (spacing or 0) <= 0:
        spacing = 1.0
    direction = np.column_stack([row, col, slice_dir])
    geometry = VolumeGeometry(
        shape=(len(planes), first.file.rows, first.file.columns),
        spacing=(spacing, rs, cs),
        origin=tuple(first.position),
        direction=direction,
    )
    return _checked(Stack(series_uid, planes, geometry, warnings=warnings))


def _pixel_spacing(plane: SliceHeader) -> tuple[tuple[float, float], list[str]]:
    """(row spacing, column spacing) in mm, 1 mm with a warning when absent or invalid."""
    spacing = plane.pixel_spacing
    if spacing is None:
        return (1.0, 1.0), ["no pixel spacing in the header: 1 mm assumed"]
    if min(spacing) <= 0 or not all(np.isfinite(spacing)):
        shown = "\\".join(f"{v:g}" for v in spacing)
        return (1.0, 1.0), [f"invalid pixel spacing {shown}: 1 mm assumed"]
    return spacing, []


def _build_unpositioned(series_uid, group) -> Stack:
    planes = sorted(group, key=lambda s: (s.instance_number or 0, s.file.path, s.frame))
    first = planes[0]
    (rs, cs), warnings = _pixel_spacing(first)
    if len(planes) > 1:
        warnings.append("no patient position in the headers: planes ordered by instance number")
    spacing = first.file.spacing_between_slices or first.slice_thickness or 1.0
    geometry = VolumeGeometry(
        shape=(len(planes), first.file.rows, first.file.columns), spacing=(spacing, rs, cs)
    )
    return _checked(Stack(series_uid, planes, geometry, warnings=warnings))


def _checked(stack: Stack) -> Stack:
    f = stack.first
    voxels = int(np.prod(stack.shape, dtype=np.int64))
    if f.rows <= 0 or f.columns <= 0:
        stack.error = f"invalid image size {f.rows}x{f.columns}"
    elif voxels > MAX_VOXELS:
        dims = "×".join(str(v) for v in reversed(stack.shape[:3]))
        stack.error = (
            f"claims {dims} voxels ({voxels:.3g}, at least {fmt_bytes(voxels)}); larger than "
            f"radview's limit of {MAX_VOXELS:.3g} voxels a series"
        )
    elif f.bits_allocated not in (1, 8, 16, 32, 64):
        stack.error = f"unsupported BitsAllocated {f.bits_allocated}"
    return stack
