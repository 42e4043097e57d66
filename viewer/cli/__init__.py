"""Headless commands: ``radview info``, ``convert``, ``screenshot``, ``classify``, ``segment``,
``anonymize``.

Scripts rely on these exactly (see README). Bad input gives one line on stderr and a
non-zero exit, never a traceback. Only ``viewer.core`` is imported at module level: no Qt,
VTK or TensorFlow, so the commands start fast; ``screenshot`` imports ``viewer.render``
(VTK, offscreen, no display needed) inside the command; ``classify`` and ``segment`` run the
model in a separate AI process (``ai.process``): TensorFlow is never imported into this one.

This package holds the parser and ``main``; the commands live in ``viewer.cli.files``
(info, convert, screenshot), ``viewer.cli.ai_commands`` (classify, segment) and
``viewer.cli.anonymize`` (anonymize), the helpers they share in ``viewer.cli.inputs``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys

from viewer.cli.ai_commands import (
    cmd_classify,
    cmd_segment,
    format_predictions,
    format_segmentations,
)
from viewer.cli.anonymize import add_parser as add_anonymize_parser
from viewer.cli.anonymize import cmd_anonymize
from viewer.cli.files import SCREENSHOT_LAYOUTS, cmd_convert, cmd_info, cmd_screenshot, format_table
from viewer.cli.inputs import PROG, UsageError
from viewer.cli.models import add_models_parser

__all__ = [
    "PROG",
    "SUBCOMMANDS",
    "UsageError",
    "build_parser",
    "cmd_anonymize",
    "cmd_classify",
    "cmd_convert",
    "cmd_info",
    "cmd_screenshot",
    "cmd_segment",
    "format_predictions",
    "format_segmentations",
    "format_table",
    "main",
]

SUBCOMMANDS = ("info", "convert", "screenshot", "classify", "segment", "anonymize", "models")


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
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation headless and offline (demo study, rendering, every "
        "shipped model, DICOM SEG/NIfTI export); exit 0 only if every step passes",
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
    shot.add_argument(
        "--layout",
        choices=SCREENSHOT_LAYOUTS,
        help="single (default for one image), mpr (default for a volume), 2x2",
    )
    shot.add_argument(
        "--window",
        metavar="NAME|C,W",
        help="preset name (lung, mediastinum, bone, brain, abdomen) or C,W",
    )
    shot.add_argument("--series", metavar="UID", help="series UID (see radview info)")
    shot.add_argument("--size", metavar="WxH", help="image size in pixels, e.g. 1500x500")
    shot.add_argument(
        "--anonymize", action="store_true", help="no patient name, ID or dates in the corners"
    )
    shot.set_defaults(func=cmd_screenshot)

    cls = sub.add_parser("classify", help="classify radiographs with a model (AI process)")
    cls.add_argument(
        "paths", nargs="+", metavar="PATH", help="DICOM file or folder (each series), PNG or JPEG"
    )
    cls.add_argument("--model", required=True, metavar="NAME", help="model name (registry)")
    cls.add_argument("--json", action="store_true", help="one JSON object on stdout")
    cls.add_argument(
        "--cam-dir", metavar="DIR", help="write each input's class activation map as DIR/<stem>.npy"
    )
    cls.set_defaults(func=cmd_classify)

    seg = sub.add_parser("segment", help="label images or volumes with a segmentation model")
    seg.add_argument(
        "paths", nargs="+", metavar="PATH", help="DICOM file or folder (each series), PNG or JPEG"
    )
    seg.add_argument("--model", required=True, metavar="NAME", help="model name (registry)")
    seg.add_argument("--json", action="store_true", help="one JSON object on stdout")
    where = seg.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        metavar="FILE",
        help="with one input: .png (2D label image), .nii/.nii.gz (label "
        "volume) or .dcm (DICOM SEG, needs a DICOM input)",
    )
    where.add_argument(
        "--out-dir",
        metavar="DIR",
        help="write DIR/<input stem>.png (2D) or .nii.gz (3D) per input; the stem of a DICOM "
        "folder is the folder's name (<name>-<n> for its n-th series when it holds several; "
        "<stem>-2... when two inputs share a stem)",
    )
    seg.set_defaults(func=cmd_segment)
    add_models_parser(sub)
    add_anonymize_parser(sub)
    return parser


# -- entry -----------------------------------------------------------------------------------
def _gui(paths: list[str]) -> int:
    """``radview [PATH...]``: the viewer window (Qt and VTK load only here)."""
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"no such file or folder: {p}")
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and not os.environ.get("QT_QPA_PLATFORM")
    ):
        raise UsageError(
            "no display to open the viewer on (DISPLAY is not set); "
            f"the headless commands are: {', '.join(sorted(SUBCOMMANDS))}"
        )
    from viewer.qt.app import main as gui_main

    target = paths[0] if len(paths) == 1 else paths
    return gui_main([target] if paths else [])


def main(argv: list[str] | None = None) -> int:
    # a frozen (PyInstaller) build starts the AI process by re-running this executable
    multiprocessing.freeze_support()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or not (argv[0] in SUBCOMMANDS or argv[0].startswith("-")):
            return _gui(argv)
        args = parser.parse_args(argv)
        if args.self_test:
            if args.command is not None:
                raise UsageError("--self-test takes no command")
            from viewer.cli.selftest import run as self_test

            return self_test()
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
