"""Headless commands: ``radview info``, ``radview convert`` and ``radview screenshot``.

Scripts rely on these exactly (see README). Bad input gives one line on stderr and a
non-zero exit, never a traceback. Only ``viewer.core`` is imported at module level: no Qt,
VTK or TensorFlow, so the commands start fast; ``screenshot`` imports ``viewer.render``
(VTK, offscreen, no display needed) inside the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from viewer.core.study_index import PathError, StudyIndex, build_index, check_series, load_series

PROG = "radview"
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd")
SCREENSHOT_LAYOUTS = ("single", "mpr", "2x2")
#: default --size per layout (width, height) in pixels
SCREENSHOT_SIZES = {"single": (800, 800), "mpr": (1500, 500), "2x2": (1000, 1000)}
MAX_SCREENSHOT_SIDE = 8192


SUBCOMMANDS = ("info", "convert", "screenshot")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [PATH ...] | {PROG} COMMAND ...",
        description="Offline radiology viewer with an AI assistant (research use only). "
        f"Without a command, '{PROG} [PATH ...]' opens the viewer window, on PATH if given.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    info = sub.add_parser("info", help="list the series in a DICOM file or folder")
    info.add_argument("path", metavar="PATH", help="file or folder (scanned recursively)")
    info.add_argument("--json", action="store_true", help="one JSON object on stdout")
    info.add_argument("--check", action="store_true", help="decode every image")
    info.set_defaults(func=cmd_info)

    conv = sub.add_parser("convert", help="write one series as NIfTI or NRRD")
    conv.add_argument("path", metavar="PATH", help="DICOM file or folder, or an image file")
    conv.add_argument("out", metavar="OUT", help="output .nii, .nii.gz or .nrrd")
    conv.add_argument("--series", metavar="UID", help="series UID (see radview info)")
    conv.set_defaults(func=cmd_convert)

    shot = sub.add_parser("screenshot", help="render a series headless and write a PNG")
    shot.add_argument("path", metavar="PATH", help="DICOM file or folder, or an image file")
    shot.add_argument("--out", required=True, metavar="FILE.png", help="PNG to write")
    shot.add_argument("--layout", choices=SCREENSHOT_LAYOUTS,
                      help="single (default for one image), mpr (default for a volume), 2x2")
    shot.add_argument("--window", metavar="NAME|C,W",
                      help="preset name (lung, mediastinum, bone, brain, abdomen) or C,W")
    shot.add_argument("--series", metavar="UID", help="series UID (see radview info)")
    shot.add_argument("--size", metavar="WxH", help="image size in pixels, e.g. 1500x500")
    shot.set_defaults(func=cmd_screenshot)
    return parser


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
    entry = _pick_series(index, args.series)
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


def _pick_series(index: StudyIndex, uid: str | None):
    if uid is not None:
        return index.find(uid)
    usable = [s for s in index.series if not s.status.startswith("error")]
    bases = {s.uid.split("#")[0] for s in usable}
    if len(bases) > 1:
        raise PathError(
            f"{index.root} holds {len(bases)} series: choose one with --series UID "
            f"(see {PROG} info)"
        )
    if not usable:
        errors = [s.status for s in index.series]
        raise PathError(
            f"no loadable image series in {index.root}" + (f" ({errors[0]})" if errors else "")
        )
    if len(usable) > 1:
        print(
            f"{PROG}: warning: series split into {len(usable)} stacks; writing the largest "
            f"(choose another with --series UID#n)",
            file=sys.stderr,
        )
    return index.find(None)


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
    if not out.lower().endswith(".png"):
        raise UsageError(f"--out must end in .png: {out}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise PathError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PathError(f"output folder is not writable: {folder}")
    if os.path.isdir(out):
        raise PathError(f"--out is a folder: {out}")


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
    entry = _pick_series(index, args.series)
    volume = load_series(entry, processes=os.cpu_count() or 1)
    layout = args.layout or ("single" if volume.geometry.shape[0] == 1 else "mpr")
    if layout != "single" and volume.geometry.shape[0] < 2:
        raise UsageError(f"--layout {layout} needs a volume; this series is a single image")
    size = size or SCREENSHOT_SIZES[layout]
    from viewer.render.offscreen import render_layout_png  # VTK only now, only here

    render_layout_png(volume, args.out, layout=layout, window=window, size=size)
    print(f"wrote {args.out} ({size[0]}x{size[1]})")
    return 0


# -- entry -----------------------------------------------------------------------------------
def _gui(paths: list[str]) -> int:
    """``radview [PATH...]``: the viewer window (Qt and VTK load only here)."""
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"no such file or folder: {p}")
    if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
        raise UsageError("no display to open the viewer on (DISPLAY is not set); "
                         f"the headless commands are: {', '.join(sorted(SUBCOMMANDS))}")
    from viewer.qt.app import main as gui_main

    target = paths[0] if len(paths) == 1 else paths
    return gui_main([target] if paths else [])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or not (argv[0] in SUBCOMMANDS or argv[0].startswith("-")):
            return _gui(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return args.func(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: not enough memory", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract: one line, never a traceback
        text = str(exc).strip().splitlines()
        print(f"{PROG}: error: {text[0] if text else type(exc).__name__}", file=sys.stderr)
        return 1
