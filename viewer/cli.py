"""Headless commands: ``radview info`` and ``radview convert``.

Scripts rely on these exactly (see README). Bad input gives one line on stderr and a
non-zero exit, never a traceback. Only ``viewer.core`` is imported here: no Qt, VTK or
TensorFlow, so the commands start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from viewer.core.study_index import PathError, StudyIndex, build_index, check_series, load_series

PROG = "radview"
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Offline radiology viewer with an AI assistant.")
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


# -- entry -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
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
