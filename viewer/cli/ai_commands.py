"""AI commands: ``radview classify`` and ``radview segment``.

The model runs in a separate AI process (``ai.process``): TensorFlow is never imported
into this one. ``ai`` and the exporters are imported inside the commands, so importing
this module stays light.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from viewer.cli.inputs import (
    PROG,
    UsageError,
    check_out_file,
    load_entry,
    make_out_dir,
    one_line,
    series_entries,
)
from viewer.core.study_index import PathError

#: ``segment --out`` suffixes: a 2D label image, a label volume, a DICOM SEG
SEGMENT_SUFFIXES = (".png", ".nii", ".nii.gz", ".dcm")


def _load_model_spec(registry, name: str, task: str, what: str):
    """The registry's model ``name`` if it is a ``task`` model, else a one-line UsageError."""
    from ai.registry import ModelUnusableError, UnknownModelError

    known = ", ".join(m.name for m in registry.list_models(task)) or "none installed"
    try:
        spec = registry.get(name)
    except ModelUnusableError as exc:  # its folder is there but model.json is bad
        raise UsageError(str(exc)) from None
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

    for source, entry, error in series_entries(path):
        volume, error = load_entry(entry) if entry is not None else (None, error)
        if volume is None:
            yield source, None, error
            continue
        try:
            image, meta = image_from_volume(volume)
        except Exception as exc:  # noqa: BLE001 - a bad file is reported, the rest goes on
            yield source, None, one_line(exc)
            continue
        k = meta["slice_index"]
        if len(volume.files) == volume.geometry.shape[0]:
            source = volume.files[k]
        yield source, image, meta


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
        make_out_dir("--cam-dir", args.cam_dir)
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
                results.append({"source": source, "error": one_line(exc)})
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
        found = list(series_entries(path))
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
        check_out_file(args.out, SEGMENT_SUFFIXES)
    if args.out_dir:
        make_out_dir("--out-dir", args.out_dir)
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
                volume, error = load_entry(item.entry, processes=os.cpu_count() or 1)
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
                results.append({"source": source, "error": one_line(exc)})
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
