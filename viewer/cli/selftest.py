"""``radview --self-test``: check an installation end to end, headless, offline.

Steps, in order (each prints ``PASS  step  (1.23 s)`` or ``FAIL  step: reason``):

* ``demo``: write the small demo study (viewer.core.demo) into a temporary folder;
* ``load-ct`` / ``load-cr``: index and decode the phantom CT and the radiograph; the CT's
  shape and spacing must be the demo's;
* ``render-ct`` / ``render-cr``: render each view offscreen (axial, coronal, sagittal and 3D
  of the CT in the 2x2 layout; the radiograph alone) and check every pane shows an image;
* ``model-<name>``: every shipped model (``ai.registry``) once through the AI process
  (``ai.process.client.AIClient``, its own spawned process: TensorFlow never enters this
  one). Classifiers run on the radiograph (probabilities must sum to 1); segmentation
  models on the CT or the radiograph, by their modalities (labels must be the model's and
  not empty). A classical model runs first, in a fresh AI process that must not have loaded
  TensorFlow (checked on Linux through /proc/PID/maps);
* ``export-seg`` / ``export-nifti``: write the CT's labels as a DICOM SEG and as NIfTI into
  a temporary folder and read them back: same voxels, same segment names.

:func:`run` returns 0 only if every step passed. The temporary folder is removed at the end.
Only the standard library is imported at module level (``radview info`` stays light);
it lives in viewer.cli so the import contracts (no TensorFlow in the viewer process) cover it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["run", "StepFailed"]


class StepFailed(RuntimeError):
    """A check failed; the message is the one-line reason printed after FAIL."""


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text[:300]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


class _Run:
    """Shared state of one self-test: the temporary folder and what earlier steps made."""

    def __init__(self, folder: Path, out=None):
        self.folder = folder
        self.out = out or sys.stdout
        self.results: list[tuple[str, bool]] = []
        self.data: dict = {}

    def step(self, name: str, func: Callable[[], None], needs: tuple[str, ...] = ()) -> bool:
        missing = [n for n in needs if n not in self.data]
        start = time.perf_counter()
        try:
            if missing:
                raise StepFailed(f"not run: needs {', '.join(missing)}")
            func()
        except Exception as exc:  # noqa: BLE001 - every failure is one FAIL line
            if os.environ.get("RADVIEW_SELFTEST_DEBUG"):
                traceback.print_exc()
            reason = _one_line(exc)
            if not isinstance(exc, StepFailed):
                reason = f"{type(exc).__name__}: {reason}"
            print(f"FAIL  {name}: {reason}", file=self.out, flush=True)
            self.results.append((name, False))
            return False
        print(f"PASS  {name}  ({time.perf_counter() - start:.2f} s)", file=self.out, flush=True)
        self.results.append((name, True))
        return True


# -- data ------------------------------------------------------------------------------------
def _demo(r: _Run) -> None:
    from viewer.core.demo import make_demo_study

    demo = make_demo_study(r.folder / "demo", size="small")
    _check(demo["cr"] is not None, "; ".join(demo["missing"]) or "no radiograph in the demo")
    r.data["demo"] = demo


def _load(r: _Run, key: str) -> None:
    from viewer.core.study_index import build_index, load_series

    demo = r.data["demo"]
    path = demo["ct"]["dir"] if key == "ct" else os.path.join(demo["root"], demo["cr"]["file"])
    index = build_index(path, workers=1)
    _check(len(index.series) == 1, f"{path}: {len(index.series)} series found, expected 1")
    volume = load_series(index.series[0], processes=1)
    if key == "ct":
        shape, spacing = tuple(demo["ct"]["shape"]), demo["ct"]["spacing"]
        _check(volume.geometry.shape == shape, f"CT shape {volume.geometry.shape} != {shape}")
        got = [float(s) for s in volume.geometry.spacing]
        _check(
            all(abs(a - b) < 1e-4 for a, b in zip(got, spacing)),
            f"CT spacing {got} != {spacing} mm",
        )
        _check(volume.modality == "CT", f"CT modality is {volume.modality!r}")
    else:
        _check(volume.geometry.shape[0] == 1, f"radiograph has {volume.geometry.shape[0]} frames")
        _check(float(volume.array.std()) > 0, "radiograph pixels are all equal")
    r.data[key] = volume


def _render(r: _Run, key: str) -> None:
    import numpy as np

    from viewer.render.mpr import layout_viewports
    from viewer.render.offscreen import capture_rgb, render_layout

    volume = r.data[key]
    layout = "2x2" if key == "ct" else "single"
    size = (400, 400)
    window, views = render_layout(volume, layout, size=size)
    try:
        rgb = capture_rgb(window)
    finally:
        views.close()
        window.Finalize()
    _check(rgb.shape == (size[1], size[0], 3), f"captured {rgb.shape}, expected {size}")
    names = {"2x2": ("axial", "coronal", "sagittal", "3d"), "single": ("image",)}[layout]
    for name, (x0, y0, x1, y1) in zip(names, layout_viewports(layout)):
        # viewports are (xmin, ymin, xmax, ymax) in 0..1, y up; pixels are top row first
        rows = slice(int((1 - y1) * size[1]) + 2, int((1 - y0) * size[1]) - 2)
        cols = slice(int(x0 * size[0]) + 2, int(x1 * size[0]) - 2)
        pane = rgb[rows, cols].astype(np.float32)
        _check(pane.size > 0 and float(pane.std()) > 2.0, f"{name} view is blank")


# -- models ----------------------------------------------------------------------------------
def _maps_mention(pid: int | None, word: str) -> bool | None:
    """Whether process ``pid`` has a library whose path holds ``word`` (None: cannot tell)."""
    if pid is None or not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            return any(word in line for line in f)
    except OSError:
        return None


def _model_input(r: _Run, spec) -> tuple[str, object]:
    """('ct' | 'cr', volume) the model runs on: the CT for CT models, else the radiograph."""
    modalities = {m.upper() for m in spec.modalities}
    if spec.task == "classification" or not modalities & {"CT"}:
        _check(
            bool(modalities & {"CR", "DX", "OT"}) or not modalities,
            f"no demo image of modality {', '.join(sorted(modalities))}",
        )
        return "cr", r.data["cr"]
    return "ct", r.data["ct"]


def _run_model(r: _Run, client, spec) -> None:
    import numpy as np

    from ai.classify import image_from_volume
    from ai.segment import volume_input

    client.load_model(spec)
    key, volume = _model_input(r, spec)
    if spec.task == "classification":
        image, meta = image_from_volume(volume)
        pred = client.classify(image, meta, spec, cam=True)
        total = sum(pred.probabilities.values())
        _check(abs(total - 1.0) < 1e-3, f"probabilities sum to {total:.4f}")
        _check(pred.label in spec.classes, f"label {pred.label!r} is not one of the classes")
        _check(pred.cam is None or pred.cam.shape == image.shape, "CAM shape differs from image")
        return
    array, meta = volume_input(volume)
    labels = np.asarray(client.segment_volume(array, meta, spec))
    _check(
        labels.shape == volume.geometry.shape,
        f"labels shape {labels.shape} != image {volume.geometry.shape}",
    )
    known = {int(k) for k in spec.labels}
    found = {int(v) for v in np.unique(labels)}
    _check(found <= known | {0}, f"labels {sorted(found - known)} are not the model's")
    _check(found - {0}, "no voxel labelled")
    r.data.setdefault("labels", {})[(key, spec.name)] = labels


def _models(r: _Run) -> None:
    from ai.process.client import AIClient
    from ai.registry import Registry, shipped_models_dir

    registry = Registry([shipped_models_dir()])
    specs = registry.list_models()
    ok = r.step(
        "models-found",
        lambda: _check(
            bool(specs),
            f"no model in {shipped_models_dir()} " + "; ".join(registry.problems.values()),
        ),
    )
    if not ok:
        return
    classical = [s for s in specs if s.is_classical]
    networks = [s for s in specs if not s.is_classical]
    with AIClient(registry, request_timeout=300.0) as client:
        for spec in classical:

            def classical_step(spec=spec):
                _run_model(r, client, spec)
                tf = _maps_mention(client.pid, "tensorflow")
                _check(tf is not True, "the AI process loaded TensorFlow for a classical model")

            r.step(f"model-{spec.name}", classical_step, needs=("ct", "cr"))
    with AIClient(registry, request_timeout=600.0) as client:
        for spec in networks:
            r.step(
                f"model-{spec.name}",
                lambda spec=spec: _run_model(r, client, spec),
                needs=("ct", "cr"),
            )


# -- export ----------------------------------------------------------------------------------
def _ct_labelmap(r: _Run):
    from ai.registry import Registry, shipped_models_dir
    from viewer.core.labelmap import LabelMap, Provenance

    results = r.data.get("labels", {})
    ct = [(name, labels) for (key, name), labels in results.items() if key == "ct"]
    _check(bool(ct), "no CT segmentation to export (the CT models failed)")
    name, labels = ct[0]
    spec = Registry([shipped_models_dir()]).get(name)
    names = {int(k): v for k, v in spec.labels.items() if int(k)}
    provenance = Provenance("AUTOMATIC", spec.name, spec.version)
    return LabelMap.from_names(r.data["ct"].geometry, labels, names, provenance)


def _same(original, back, what: str) -> None:
    import numpy as np

    _check(back.labels.shape == original.labels.shape, f"{what}: shape {back.labels.shape}")
    differ = int(np.count_nonzero(back.labels != original.labels))
    _check(differ == 0, f"{what}: {differ} voxels differ after reading back")
    want = {k: s.name for k, s in original.segments.items() if (original.labels == k).any()}
    got = {k: back.segments[k].name for k in want if k in back.segments}
    _check(got == want, f"{what}: segments {got} != {want}")


def _export_seg(r: _Run) -> None:
    from viewer.core.export.dicom_seg import read_seg, write_seg

    labelmap = _ct_labelmap(r)
    path = write_seg(labelmap, r.data["ct"], r.folder / "out" / "labels.seg.dcm")
    _check(path.stat().st_size > 0, "empty SEG file")
    _same(labelmap, read_seg(path, r.data["ct"]), "DICOM SEG")


def _export_nifti(r: _Run) -> None:
    from viewer.core.export.label_files import read_label_volume, write_label_nifti

    labelmap = _ct_labelmap(r)
    path = write_label_nifti(labelmap, r.folder / "out" / "labels.nii.gz", volume=r.data["ct"])
    _same(labelmap, read_label_volume(path, r.data["ct"]), "NIfTI")


def _anonymize(r: _Run) -> None:
    """The demo CT anonymised (PS3.15 Annex E table loads, pixels unchanged, no name left)."""
    import pydicom

    from viewer.core.anonymize import Anonymizer, anonymize_tree

    src = Path(r.data["demo"]["ct"]["dir"])
    report = anonymize_tree(src, r.folder / "anon", Anonymizer())
    _check(not report.failed, "; ".join(f"{f.path}: {f.reason}" for f in report.failed[:2]))
    _check(len(report.written) > 0, "nothing written")
    source, output = report.written[0]
    a, b = pydicom.dcmread(source), pydicom.dcmread(output)
    _check(a.PixelData == b.PixelData, "pixel data changed")
    _check(b.PatientIdentityRemoved == "YES", "PatientIdentityRemoved is not YES")
    _check(str(b.PatientName) != str(a.PatientName), "patient name kept")
    _check(b.SOPInstanceUID != a.SOPInstanceUID, "SOP Instance UID kept")


# -- entry -----------------------------------------------------------------------------------
def run(out=None) -> int:
    """Run every step, printing one line each; 0 if all passed, else 1."""
    out = out or sys.stdout
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="radview-selftest-") as tmp:
        r = _Run(Path(tmp), out)
        (r.folder / "out").mkdir()
        r.step("demo", lambda: _demo(r))
        r.step("load-ct", lambda: _load(r, "ct"), needs=("demo",))
        r.step("load-cr", lambda: _load(r, "cr"), needs=("demo",))
        r.step("render-ct", lambda: _render(r, "ct"), needs=("ct",))
        r.step("render-cr", lambda: _render(r, "cr"), needs=("cr",))
        _models(r)
        r.step("export-seg", lambda: _export_seg(r), needs=("ct",))
        r.step("export-nifti", lambda: _export_nifti(r), needs=("ct",))
        r.step("anonymize", lambda: _anonymize(r), needs=("demo",))
    failed = [name for name, ok in r.results if not ok]
    total = time.perf_counter() - start
    if failed:
        print(
            f"self-test FAILED: {len(failed)} of {len(r.results)} steps ({', '.join(failed)}) "
            f"in {total:.1f} s",
            file=out,
            flush=True,
        )
        return 1
    print(f"self-test passed: {len(r.results)} steps in {total:.1f} s", file=out, flush=True)
    return 0
