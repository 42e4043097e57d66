"""File commands: ``radview info``, ``convert`` and ``screenshot``.

Only ``viewer.core`` is imported at module level; ``screenshot`` imports ``viewer.render``
(VTK, offscreen, no display needed) inside the command.
"""

from __future__ import annotations

import json
import os
import sys

from viewer.cli.inputs import PROG, UsageError, check_out_file, pick_series
from viewer.core.study_index import StudyIndex, build_index, check_series, load_series

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd")
SCREENSHOT_LAYOUTS = ("single", "mpr", "2x2")
#: default --size per layout (width, height) in pixels
SCREENSHOT_SIZES = {"single": (800, 800), "mpr": (1500, 500), "2x2": (1000, 1000)}
MAX_SCREENSHOT_SIDE = 8192


# -- info ------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    index = build_index(args.path, workers=os.cpu_count() or 1)
    if args.check:
        for entry in index.series:
            check_series(entry, processes=os.cpu_count() or 1)
    if args.json:
        json.dump(index.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(index))
    return 0


def _fmt_dims(values, fmt="{}") -> str:
    return "\u00d7".join(fmt.format(v) for v in reversed(values))


def format_table(index: StudyIndex) -> str:
    """Readable listing: one block per series, sizes as columns×rows×slices."""
    lines = [f"{index.root}: {len(index.series)} series, {len(index.skipped)} skipped file(s)"]
    for n, s in enumerate(index.series, 1):
        shape = s.shape[:3]
        colour = " RGB" if len(s.shape) == 4 else ""
        date = s.study_date
        if len(date) == 8 and date.isdigit():
            date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
        lines.append("")
        lines.append(
            f"[{n}] {s.modality or '-':<3} {s.description or '(no description)'}  "
            f"{len(s.files)} file(s)  {_fmt_dims(shape)}{colour}  "
            f"{_fmt_dims(s.spacing, '{:.3g}')} mm  {s.status}"
        )
        who = ", ".join(p for p in (s.patient, date) if p)
        if who:
            lines.append(f"    patient/date: {who}")
        lines.append(f"    uid: {s.uid}")
        for w in s.warnings:
            lines.append(f"    warning: {w}")
    if index.skipped:
        lines.append("")
        lines.append("skipped:")
        for sk in index.skipped:
            lines.append(f"    {sk.path}: {sk.reason}")
    return "\n".join(lines) + "\n"


# -- convert ---------------------------------------------------------------------------------
def cmd_convert(args) -> int:
    from viewer.core.dicom.loaders import stored_plane_ranges
    from viewer.core.export.volume_files import write_nifti_from_planes, write_volume

    if not args.out.lower().endswith(VOLUME_SUFFIXES):
        raise UsageError(f"OUT must end in .nii, .nii.gz or .nrrd: {args.out}")
    index = build_index(args.path, workers=os.cpu_count() or 1)
    entry = pick_series(index, args.series)
    for w in entry.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    ranges = stored_plane_ranges(entry.stack) if entry.stack is not None else None
    if ranges is not None and args.out.lower().endswith(".nii"):
        # uncompressed DICOM to .nii: the kernel copies stored values, NIfTI scl_* rescales
        dtype, slope, intercept, planes = ranges
        geometry = entry.stack.geometry
        write_nifti_from_planes(args.out, geometry, dtype, planes, slope, intercept)
    else:
        volume = load_series(entry, processes=os.cpu_count() or 1)
        geometry, dtype = volume.geometry, volume.array.dtype
        write_volume(volume, args.out)
    print(
        f"wrote {args.out} ({_fmt_dims(geometry.shape)} {dtype}, "
        f"{_fmt_dims(geometry.spacing, '{:.4g}')} mm)"
    )
    return 0


# -- screenshot ------------------------------------------------------------------------------
def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("\u00d7", "x").split("x")
    try:
        w, h = (int(p.strip()) for p in parts)
    except ValueError:
        raise UsageError(
            f"--size must be WIDTHxHEIGHT in pixels, e.g. 1500x500: {text!r}"
        ) from None
    if not (16 <= w <= MAX_SCREENSHOT_SIDE and 16 <= h <= MAX_SCREENSHOT_SIDE):
        raise UsageError(f"--size sides must be 16 to {MAX_SCREENSHOT_SIDE} pixels: {text!r}")
    return w, h


def _check_png_target(out: str) -> None:
    check_out_file(out, (".png",))


def cmd_screenshot(args) -> int:
    from viewer.core.windowing import parse_window

    _check_png_target(args.out)
    size = _parse_size(args.size) if args.size else None
    window = None
    if args.window is not None:
        try:
            window = parse_window(args.window).as_tuple()
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None
    index = build_index(args.path, workers=os.cpu_count() or 1)
    entry = pick_series(index, args.series)
    volume = load_series(entry, processes=os.cpu_count() or 1)
    if getattr(args, "anonymize", False):  # no patient name, ID, dates in the corner text
        from viewer.core.anonymize.exports import anonymized_volume

        volume = anonymized_volume(volume)
    layout = args.layout or ("single" if volume.geometry.shape[0] == 1 else "mpr")
    if layout != "single" and volume.geometry.shape[0] < 2:
        raise UsageError(f"--layout {layout} needs a volume; this series is a single image")
    size = size or SCREENSHOT_SIZES[layout]
    from viewer.render.offscreen import render_layout_png  # VTK only now, only here

    render_layout_png(volume, args.out, layout=layout, window=window, size=size)
    print(f"wrote {args.out} ({size[0]}x{size[1]})")
    return 0
