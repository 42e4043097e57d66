"""``radview anonymize SRC OUT [--keep-dates] [--keep-uids] [--key FILE] [--json]``.

Writes every DICOM file of SRC (a file, or a folder scanned recursively) de-identified with
the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile under OUT, laid out
as ``OUT/<pseudonym>/<study>/<series>/<instance>.dcm`` (see :mod:`viewer.core.anonymize.tree`).

Output (text mode): on stderr one line per skipped file (``radview: skipped: PATH: reason``),
per failed file (``radview: failed: PATH: reason``) and per output series that may carry
burned-in text (``radview: warning: SERIES_FOLDER: reason (N file(s))``); on stdout one
summary line ``anonymized: N file(s) written to OUT, S skipped, F failed, W warning(s)``.
With ``--json``: one JSON object on stdout instead (written, skipped, failed, warnings).

Exit status: 0 when every DICOM file was written (skipped non-DICOM files are fine), 1 when
some DICOM file failed (the others are written) or SRC holds no DICOM file, 2 on usage
errors (SRC missing, OUT inside SRC, OUT not a new or empty folder, key file inside OUT).
"""

from __future__ import annotations

import json
import os
import sys

from viewer.cli.inputs import PROG, UsageError
from viewer.core.anonymize import AnonymizeOptions, Anonymizer, DestinationError, anonymize_tree
from viewer.core.anonymize.tree import check_destination_folder


def add_parser(sub) -> None:
    """Register ``anonymize`` on the subparsers ``sub`` of the main parser."""
    anon = sub.add_parser(
        "anonymize",
        help="write a de-identified copy of DICOM files (PS3.15 Annex E basic profile)",
    )
    anon.add_argument("src", metavar="SRC", help="DICOM file or folder (scanned recursively)")
    anon.add_argument("out", metavar="OUT", help="new or empty folder outside SRC")
    anon.add_argument(
        "--keep-dates",
        action="store_true",
        help="keep dates and times (Retain Longitudinal Temporal Information Full Dates "
        "Option); birth dates are still removed",
    )
    anon.add_argument(
        "--keep-uids", action="store_true", help="keep the original UIDs (Retain UIDs Option)"
    )
    anon.add_argument(
        "--key",
        metavar="FILE",
        help="pseudonymisation key: reused if FILE exists (same UIDs and pseudonyms as an "
        "earlier run), else created; keep it away from OUT (it re-identifies)",
    )
    anon.add_argument("--json", action="store_true", help="one JSON object on stdout")
    anon.set_defaults(func=cmd_anonymize)


def _anonymizer(args) -> Anonymizer:
    options = AnonymizeOptions(keep_dates=args.keep_dates, keep_uids=args.keep_uids)
    if not args.key:
        return Anonymizer(options)
    key = os.path.abspath(args.key)
    out = os.path.realpath(args.out)
    if os.path.realpath(key).startswith(out.rstrip(os.sep) + os.sep):
        raise UsageError(f"--key must not be inside OUT (it re-identifies the copy): {args.key}")
    if os.path.isdir(key):
        raise UsageError(f"--key is a folder: {args.key}")
    if os.path.exists(key):
        try:
            return Anonymizer(options, Anonymizer.load(key).salt)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not os.path.isdir(os.path.dirname(key)):
        raise UsageError(f"--key folder does not exist: {os.path.dirname(key)}")
    anonymizer = Anonymizer(options)
    anonymizer.save(key)
    return anonymizer


def cmd_anonymize(args) -> int:
    if not os.path.exists(args.src):
        raise UsageError(f"no such file or folder: {args.src}")
    try:
        check_destination_folder(args.src, args.out)
        anonymizer = _anonymizer(args)
        report = anonymize_tree(args.src, args.out, anonymizer)
    except DestinationError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for s in report.skipped:
            print(f"{PROG}: skipped: {s.path}: {s.reason}", file=sys.stderr)
        for s in report.failed:
            print(f"{PROG}: failed: {s.path}: {s.reason}", file=sys.stderr)
        for folder, message, n in report.grouped_warnings():
            print(f"{PROG}: warning: {folder}: {message} ({n} file(s))", file=sys.stderr)
        print(f"anonymized: {report.summary()}")
    if report.failed:
        return 1
    if not report.written:
        if not args.json:
            print(f"{PROG}: error: no DICOM file in {args.src}", file=sys.stderr)
        return 1
    return 0
