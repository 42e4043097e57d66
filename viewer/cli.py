"""Headless commands: ``radview info``, ``convert``, ``screenshot``, ``classify``, ``segment``.

Scripts rely on these exactly (see README). Bad input gives one line on stderr and a
non-zero exit, never a traceback. Only ``viewer.core`` is imported at module level: no Qt,
VTK or TensorFlow, so the commands start fast; ``screenshot`` imports ``viewer.render``
(VTK, offscreen, no display needed) inside the command; ``classify`` and ``segment`` run the
model in a separate AI process (``ai.process``): TensorFlow is never imported into this one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass

from viewer.core.study_index import PathError, StudyIndex, build_index, check_series, load_series

PROG = "radview"
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd")
SCREENSHOT_LAYOUTS = ("single", "mpr", "2x2")
#: default --size per layout (width, height) in pixels
SCREENSHOT_SIZES = {"single": (800, 800), "mpr": (1500, 500), "2x2": (1000, 1000)}
MAX_SCREENSHOT_SIDE = 8192


SUBCOMMANDS = ("info", "convert", "screenshot", "classify", "segment")
#: ``segment --out`` suffixes: a 2D label image, a label volume, a DICOM SEG
SEGMENT_SUFFIXES = (".png", ".nii", ".nii.gz", ".dcm")


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
    _check_out_file(out, (".png",))


def _check_out_file(out: str, suffixes: tuple[str, ...]) -> None:
    """``--out`` ends in one of ``suffixes`` and its folder exists and is writable."""
    if not out.lower().endswith(suffixes):
        raise UsageError(f"--out must end in {' or '.join(suffixes)}: {out}")
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


# -- inputs of the AI commands -----------------------------------------------------------
def _series_entries(path: str):
    """Yield (source, entry, error) for each image series of one PATH argument (headers only).

    ``entry`` is the series' SeriesEntry (``error`` None; load it with :func:`_load_entry`),
    or None with a one-line ``error``; ``source`` is the series' first file, or PATH
    (absolute) when nothing could be read. Files of a folder that hold no image (except
    DICOMDIR) are reported as errors too.
    """
    absolute = os.path.abspath(path)
    if not os.path.exists(path):
        yield absolute, None, "no such file or folder"
        return
    try:
        index = build_index(path, workers=os.cpu_count() or 1)
    except (PathError, OSError, ValueError) as exc:
        yield absolute, None, _one_line(exc)
        return
    for skipped in index.skipped:
        if os.path.basename(skipped.path).upper() != "DICOMDIR":
            yield skipped.path, None, skipped.reason
    if not index.series and not index.skipped:
        yield absolute, None, "no image found"
    for entry in index.series:
        yield (entry.files[0] if entry.files else absolute), entry, None


def _load_entry(entry, processes: int = 1):
    """(Volume, None), or (None, one-line reason) when the series cannot be decoded."""
    try:
        return load_series(entry, processes=processes), None
    except MemoryError:
        return None, "not enough memory to load this series"
    except Exception as exc:  # noqa: BLE001 - a bad file is reported, the rest goes on
        return None, _one_line(exc)


def _make_out_dir(option: str, folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise PathError(f"cannot create {option} {folder}: {exc.strerror}") from None


def _load_model_spec(registry, name: str, task: str, what: str):
    """The registry's model ``name`` if it is a ``task`` model, else a one-line UsageError."""
    from ai.registry import UnknownModelError

    known = ", ".join(m.name for m in registry.list_models(task)) or "none installed"
    try:
        spec = registry.get(name)
    except UnknownModelError:
        raise UsageError(f"unknown model {name!r} ({task} models: {known})") from None
    if spec.task != task:
        raise UsageError(
            f"model {spec.name!r} is a {spec.task} model, not a {what} ({task} models: {known})"
        )
    return spec


# -- classify --------------------------------------------------------------------------------
def _classify_inputs(path: str):
    """Yield (source, image2d, meta) or (source, None, error) for one PATH argument.

    A folder or DICOM file gives each image series in it: a single-image series its image,
    a volume (CT) its middle slice (k = n // 2, source = that slice's file).
    """
    from ai.classify import image_from_volume

    for source, entry, error in _series_entries(path):
        volume, error = _load_entry(entry) if entry is not None else (None, error)
        if volume is None:
            yield source, None, error
            continue
        try:
            image, meta = image_from_volume(volume)
        except Exception as exc:  # noqa: BLE001 - a bad file is reported, the rest goes on
            yield source, None, _one_line(exc)
            continue
        k = meta["slice_index"]
        if len(volume.files) == volume.geometry.shape[0]:
            source = volume.files[k]
        yield source, image, meta


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _cam_target(folder: str, source: str, used: set[str]) -> str:
    """``folder/<stem of source>.npy``; ``<stem>-2.npy``... if two inputs share a stem."""
    stem = os.path.splitext(os.path.basename(source))[0] or "image"
    name, n = f"{stem}.npy", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.npy"
    used.add(name)
    return os.path.join(folder, name)


def cmd_classify(args) -> int:
    import numpy as np

    from ai.process.client import AIClient, AIProcessError, AIRequestError
    from ai.registry import Registry

    registry = Registry()
    spec = _load_model_spec(registry, args.model, "classification", "classifier")
    if args.cam_dir:
        _make_out_dir("--cam-dir", args.cam_dir)
    with AIClient(registry) as client:
        client.start()  # the AI process imports TensorFlow while the inputs are read
        inputs = [item for path in args.paths for item in _classify_inputs(path)]
        try:
            info = client.load_model(spec)
        except (AIRequestError, AIProcessError) as exc:
            raise PathError(f"model {spec.name!r} cannot be used: {exc}") from None
        results, used = [], set()
        for source, image, meta in inputs:
            if image is None:
                results.append({"source": source, "error": meta})
                continue
            try:
                pred = client.classify(image, meta, spec, cam=bool(args.cam_dir))
            except (AIRequestError, AIProcessError) as exc:
                results.append({"source": source, "error": _one_line(exc)})
                continue
            entry = {"source": source, "label": pred.label, "probabilities": pred.probabilities}
            if args.cam_dir:
                target = _cam_target(args.cam_dir, source, used)
                cam = pred.cam if pred.cam is not None else np.zeros(image.shape, np.float32)
                np.save(target, cam.astype(np.float32))
            results.append(entry)
    model = {"name": spec.name, "version": spec.version, "device": info.get("device", "")}
    if args.json:
        json.dump({"model": model, "results": results}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_predictions(model, spec.classes, results))
    return 1 if any("error" in r for r in results) else 0


def format_predictions(model: dict, classes, results: list[dict]) -> str:
    """Readable table: one row per input, the label and each class's probability."""
    lines = [
        f"model {model['name']} {model['version']} on {model['device']} "
        "(research use only, not for diagnostic use)",
        "",
    ]
    width = max([len(r["source"]) for r in results] + [6])
    head = f"{'source':<{width}}  {'label':<12}" + "".join(f"{c[:10]:>11}" for c in classes)
    lines.append(head)
    for r in results:
        if "error" in r:
            lines.append(f"{r['source']:<{width}}  error: {r['error']}")
            continue
        probs = "".join(f"{r['probabilities'][c]:>11.3f}" for c in classes)
        lines.append(f"{r['source']:<{width}}  {r['label']:<12}{probs}")
    return "\n".join(lines) + "\n"


# -- segment ---------------------------------------------------------------------------------
def _stem(path: str) -> str:
    """A file's name without its suffix (``.nii.gz`` counts as one); a folder's name."""
    name = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path):
        return name or "input"
    for suffix in (".nii.gz", ".dcm"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0] or "input"


@dataclass
class _SegmentInput:
    """One series to segment (not loaded yet): where it came from, the name its output
    gets, its SeriesEntry (None with an ``error``), whether it is DICOM and whether its
    voxels have a known physical size."""

    source: str
    stem: str
    entry: object = None
    error: str | None = None
    dicom: bool = False
    physical: bool = False

    @property
    def slices(self) -> int:
        return int(self.entry.shape[0])

    @property
    def colour(self) -> bool:
        return len(self.entry.shape) == 4


def _has_physical_size(entry) -> bool:
    """A DICOM series with a valid pixel spacing and, for one slice, a slice thickness or
    spacing: then mL mean something (pictures and radiographs have no voxel volume)."""
    if entry is None or entry.stack is None or not entry.stack.slices:
        return False
    first = entry.stack.slices[0]
    spacing = first.pixel_spacing
    if spacing is None or min(spacing) <= 0:
        return False
    thickness = first.file.spacing_between_slices or first.slice_thickness
    return len(entry.stack.slices) > 1 or bool(thickness and thickness > 0)


def _segment_inputs(paths: list[str]) -> list[_SegmentInput]:
    """Every series of every PATH, with the names their outputs get.

    ``source``: the PATH (absolute) when it gives one series, else each series' first
    file. ``stem``: PATH's stem (a folder's name), ``<stem>-<n>`` for the n-th series
    (``radview info`` order) of a PATH holding several.
    """
    items = []
    for path in paths:
        found = list(_series_entries(path))
        n_series = sum(1 for f in found if f[1] is not None)
        n = 0
        for source, entry, error in found:
            item = _SegmentInput(source, _stem(path), entry, error)
            if entry is not None:
                n += 1
                if n_series == 1:
                    item.source = os.path.abspath(path)
                else:
                    item.stem = f"{item.stem}-{n}"
                item.dicom = entry is not None and entry.stack is not None
                item.physical = _has_physical_size(entry)
            items.append(item)
    return items


def _out_kind(path: str) -> str:
    lower = path.lower()
    return next(s for s in SEGMENT_SUFFIXES if lower.endswith(s))


def _check_segment_outputs(args, items) -> None:
    """One-line errors, before the model loads, for outputs that cannot be written."""
    loaded = [item for item in items if item.entry is not None]
    if not args.out:
        return
    if len(args.paths) > 1:
        raise UsageError("--out takes one input; use --out-dir DIR for several")
    if len(loaded) > 1:
        raise UsageError(
            f"{args.paths[0]} holds {len(loaded)} image series; --out writes one: use --out-dir DIR"
        )
    kind = _out_kind(args.out)
    for item in loaded:
        source = item.source
        if kind == ".dcm" and not item.dicom:
            raise UsageError(
                f"--out {args.out}: a DICOM SEG needs a DICOM input; {source} is not DICOM"
            )
        if kind == ".dcm" and item.colour:
            raise UsageError(f"--out {args.out}: a DICOM SEG of a colour image is not supported")
        if kind == ".png" and item.slices > 1:
            raise UsageError(
                f"--out {args.out}: a .png label image holds one 2D image; "
                f"{source} has {item.slices} slices "
                "(use .nii.gz or .dcm)"
            )


def _write_labels(labelmap, volume, target: str) -> None:
    """Write ``target`` by its suffix (atomic writes; see viewer.core.export). The user
    named the destination, so it may lie in the source folder, but never be a source file."""
    from viewer.core.export import label_files

    real = os.path.realpath(target)
    if any(os.path.realpath(f) == real for f in volume.files):
        raise ValueError(f"refusing to overwrite the input file {target}")
    kind = _out_kind(target)
    if kind == ".png":
        label_files.write_label_png(labelmap, target, k=0, volume=volume, allow_into_source=True)
    elif kind == ".dcm":
        from viewer.core.export.dicom_seg import write_seg

        write_seg(labelmap, volume, target, allow_into_source=True)
    else:
        label_files.write_label_nifti(labelmap, target, volume=volume, allow_into_source=True)


def cmd_segment(args) -> int:
    from ai.process.client import AIClient, AIProcessError, AIRequestError
    from ai.registry import Registry
    from ai.segment import lung_restriction, volume_input
    from viewer.core.labelmap import LabelMap, Provenance

    registry = Registry()
    spec = _load_model_spec(registry, args.model, "segmentation", "segmentation model")
    if args.out:
        _check_out_file(args.out, SEGMENT_SUFFIXES)
    if args.out_dir:
        _make_out_dir("--out-dir", args.out_dir)
    names = {k: v for k, v in spec.labels.items() if k}
    provenance = Provenance("AUTOMATIC", spec.name, spec.version)
    items = _segment_inputs(args.paths)  # headers only: each series loads when its turn comes
    _check_segment_outputs(args, items)
    with AIClient(registry) as client:
        try:
            info = client.load_model(spec)
        except (AIRequestError, AIProcessError) as exc:
            raise PathError(f"model {spec.name!r} cannot be used: {exc}") from None
        results, used = [], set()
        for item in items:
            source = item.source
            volume, error = (None, item.error)
            if item.entry is not None:
                volume, error = _load_entry(item.entry, processes=os.cpu_count() or 1)
            if volume is None:
                results.append({"source": source, "error": error})
                continue
            try:
                array, meta = volume_input(volume)
                labels = client.segment_volume(array, meta, spec)
                labelmap = LabelMap.from_names(volume.geometry, labels, names, provenance)
                target = _segment_target(args, item.stem, volume, used)
                if target is not None:
                    _write_labels(labelmap, volume, target)
            except (AIRequestError, AIProcessError, ValueError, OSError) as exc:
                results.append({"source": source, "error": _one_line(exc)})
                continue
            except MemoryError:
                results.append({"source": source, "error": "not enough memory to segment it"})
                continue
            if spec.lungs_model and lung_restriction(spec, meta) is None:
                print(
                    f"{PROG}: warning: {source}: not CT in Hounsfield units, labels not "
                    f"restricted to the lungs ({spec.lungs_model})",
                    file=sys.stderr,
                )
            results.append(
                {
                    "source": source,
                    "output": os.path.abspath(target) if target else None,
                    "volumes_ml": _volumes_ml(labelmap, item.physical),
                }
            )
    model = {"name": spec.name, "version": spec.version, "device": info.get("device", "")}
    if args.json:
        labels_json = {str(k): v for k, v in names.items()}
        json.dump({"model": model, "labels": labels_json, "results": results}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_segmentations(model, results))
    return 1 if any("error" in r for r in results) else 0


def _segment_target(args, stem: str, volume, used: set[str]) -> str | None:
    """--out, or ``--out-dir/<stem>.png`` (one slice) / ``.nii.gz`` (a volume), or None."""
    if args.out:
        return args.out
    if not args.out_dir:
        return None
    suffix = ".png" if volume.geometry.shape[0] == 1 else ".nii.gz"
    name, n = stem + suffix, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}{suffix}"
    used.add(name)
    return os.path.join(args.out_dir, name)


def _volumes_ml(labelmap, known: bool) -> dict:
    """mL per label name (every label of the model, viewer.core.quantify: voxels x voxel
    volume; one slice: the slab of its thickness); None each when the size is unknown."""
    if not known:
        return dict.fromkeys(labelmap.names().values())
    from viewer.core.quantify import quantify

    return {name: round(ml, 3) for name, ml in quantify(labelmap).volumes_ml.items()}


def format_segmentations(model: dict, results: list[dict]) -> str:
    """Readable summary: per input, where the labels went and each label's volume."""
    lines = [
        f"model {model['name']} {model['version']} on {model['device']} "
        "(research use only, not for diagnostic use)",
        "",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['source']}: error: {r['error']}")
            continue
        lines.append(f"{r['source']}" + (f" -> {r['output']}" if r["output"] else ""))
        volumes = ", ".join(
            f"{name} {ml:.1f} mL" if ml is not None else f"{name} (no physical size)"
            for name, ml in r["volumes_ml"].items()
        )
        lines.append(f"    {volumes}")
    return "\n".join(lines) + "\n"


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
