"""ModelSpec: one model's ``model.json`` parsed and checked (data only, never code).

The format is documented in ``resources/models/README.md``. Every problem is reported as a
:class:`ModelSpecError` whose message is one line naming the file and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai.transforms import Pipeline, TransformError, build_pipeline, output_shape

FORMAT = 1
TASKS = ("classification", "segmentation")
#: how a model runs: ``keras`` (weights file, TensorFlow in the AI process) or ``classical``
#: (a fixed function of radview, named by ``method``; no weights, no TensorFlow)
BACKENDS = ("keras", "classical")
#: ``method`` names a classical model may use -> (module, function); a fixed table in code,
#: the model.json only picks a name from it (data, never code)
CLASSICAL_METHODS: dict[str, tuple[str, str]] = {
    "ct_lungs": ("ai.ct_lungs", "segment_lungs"),
}
#: postprocessing ops of segmentation models (see resources/models/README.md)
POSTPROCESSING_OPS = ("within_lungs",)
DEFAULT_BATCH_SIZE = 8
CAM_METHODS = ("cam", "gradcam")
WEIGHT_SUFFIXES = (".keras", ".h5")
#: formats that are Python pickles (or hold one): reading them can run code, never loaded
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".npy")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ModelSpecError(ValueError):
    """A model.json that cannot be used (one-line message)."""


@dataclass(frozen=True)
class InputSpec:
    """The model input: (batch, height, width, channels) float32, sizes in pixels."""

    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class CamSpec:
    """How to explain a classification: ``cam`` (GAP → dense) or ``gradcam`` (any model).

    Layer names may be None: the backend then picks the last layer with a 4-D output
    (``conv_layer``) and the last Dense layer (``dense_layer``).
    """

    method: str
    conv_layer: str | None = None
    dense_layer: str | None = None


@dataclass(frozen=True)
class CustomCode:
    """A user model's own layer code: ``file`` (a ``.py`` in the model folder), its sha256
    and the names of the classes (or functions) it defines that the weights file references.

    Such a model is refused until the user trusts it (:mod:`ai.trust`): the file is Python
    that runs, with the user's permissions, inside the AI process when the model loads.
    """

    file: str
    sha256: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A model folder's spec. ``folder`` is where model.json was found (absolute).

    A ``classical`` model has no ``input`` (None), no preprocessing and no weights
    (``weights_file`` and ``weights_sha256`` are empty, ``weights_path`` is None).
    """

    name: str
    version: str
    task: str
    input: InputSpec | None
    preprocessing: tuple[dict, ...]
    weights_file: str
    weights_sha256: str
    folder: Path
    modalities: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    labels: dict[int, str] = field(default_factory=dict)
    positive_class: str | None = None
    cam: CamSpec | None = None
    card: str | None = None
    intended_use: str = ""
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    backend: str = "keras"
    method: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    postprocessing: tuple[dict, ...] = ()
    custom_code: CustomCode | None = None

    @property
    def custom_code_path(self) -> Path | None:
        """The custom layer code file, or None when the model has none (built-in layers)."""
        return self.folder / self.custom_code.file if self.custom_code else None

    @property
    def weights_path(self) -> Path | None:
        """The weights file, or None for a classical model (it has none)."""
        return self.folder / self.weights_file if self.weights_file else None

    @property
    def is_classical(self) -> bool:
        return self.backend == "classical"

    @property
    def lungs_model(self) -> str | None:
        """The model whose mask restricts this one's labels (``within_lungs``), if any."""
        for step in self.postprocessing:
            if step["op"] == "within_lungs":
                return step["model"]
        return None

    @property
    def card_path(self) -> Path | None:
        """The model card (Markdown) if the spec names one and it exists."""
        if not self.card:
            return None
        path = self.folder / self.card
        return path if path.is_file() else None

    @property
    def helper_models(self) -> tuple[str, ...]:
        """Names of the models the pre- and postprocessing need (lung_crop, lung_mask,
        within_lungs)."""
        ops = ("lung_crop", "lung_mask", "within_lungs")
        steps = (*self.preprocessing, *self.postprocessing)
        names = [s["model"] for s in steps if s.get("op") in ops]
        return tuple(dict.fromkeys(names))

    def pipeline(self, context: Mapping | None = None) -> Pipeline:
        """The preprocessing pipeline (``context["segment"]`` for lung_crop steps)."""
        return build_pipeline(self.preprocessing, context)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Read and check ``path`` (a model.json, or the folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelSpecError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelSpecError(f"{path}: cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ModelSpecError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        return cls.from_dict(data, path.parent.absolute(), source=str(path))

    @classmethod
    def from_dict(cls, data: Any, folder: str | Path, source: str = "model.json") -> ModelSpec:
        """Check a parsed model.json; raise ModelSpecError("<source>: <field>: <problem>")."""
        try:
            return _parse(data, Path(folder))
        except ModelSpecError as exc:
            raise ModelSpecError(f"{source}: {exc}") from None


def _get(data: Mapping, key: str, types, required: bool = True, default=None):
    if key not in data:
        if required:
            raise ModelSpecError(f"missing field {key!r}")
        return default
    value = data[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        want = "/".join(t.__name__ for t in _tuple(types))
        raise ModelSpecError(f"field {key!r} must be {want}, got {value!r}"[:200])
    return value


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ModelSpecError(f"field {key!r} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ModelSpecError(f"field {key!r} has duplicates")
    return tuple(value)


def _parse(data: Any, folder: Path) -> ModelSpec:
    if not isinstance(data, Mapping):
        raise ModelSpecError("the top level must be a JSON object")
    fmt = _get(data, "format", int)
    if fmt != FORMAT:
        raise ModelSpecError(f"format {fmt} is not supported (this radview reads {FORMAT})")
    name = _get(data, "name", str)
    if not _NAME.match(name):
        raise ModelSpecError(f"name {name!r} must be lower-case letters, digits, '.', '_', '-'")
    version = _get(data, "version", str)
    task = _get(data, "task", str)
    if task not in TASKS:
        raise ModelSpecError(f"task {task!r} must be one of {', '.join(TASKS)}")
    modalities = _strings(_get(data, "modalities", list, False, []), "modalities")

    backend = _get(data, "backend", str, False, "keras")
    if backend not in BACKENDS:
        raise ModelSpecError(f"backend {backend!r} must be one of {', '.join(BACKENDS)}")
    if backend == "classical":
        input_spec, steps, method = None, [], _classical_method(data, task)
    else:
        input_spec, steps, method = _network_input(data), _get(data, "preprocessing", list), None
        _check_preprocessing(steps, input_spec)
    batch_size = _get(data, "batch_size", int, False, DEFAULT_BATCH_SIZE)
    if not 1 <= batch_size <= 1024:
        raise ModelSpecError(f"batch_size must be 1 to 1024, got {batch_size}")

    classes: tuple[str, ...] = ()
    labels: dict[int, str] = {}
    positive = None
    if task == "classification":
        classes = _strings(_get(data, "classes", list), "classes")
        if len(classes) < 2:
            raise ModelSpecError("classes must name at least 2 classes")
        positive = _get(data, "positive_class", str, False)
        if positive is not None and positive not in classes:
            raise ModelSpecError(f"positive_class {positive!r} is not one of the classes")
    else:
        raw = _get(data, "labels", dict)
        try:
            labels = {int(k): v for k, v in raw.items()}
        except ValueError:
            raise ModelSpecError("labels keys must be channel numbers ('0', '1', ...)") from None
        if sorted(labels) != list(range(len(labels))) or not 2 <= len(labels) <= 256:
            raise ModelSpecError("labels must number the channels 0..n-1 (2 <= n <= 256)")
        if not all(isinstance(v, str) and v for v in labels.values()):
            raise ModelSpecError("labels values must be non-empty names")

    cam = None
    if "cam" in data and data["cam"] is not None:
        c = _get(data, "cam", dict)
        cam_method = _get(c, "method", str)
        if cam_method not in CAM_METHODS:
            known = ", ".join(CAM_METHODS)
            raise ModelSpecError(f"cam.method {cam_method!r} must be one of {known}")
        layers = (_get(c, "conv_layer", str, False), _get(c, "dense_layer", str, False))
        cam = CamSpec(cam_method, *layers)

    wfile, sha = _weights(data) if backend == "keras" else ("", "")
    custom = _custom_code(data) if backend == "keras" else None
    if backend != "keras" and "custom_code" in data:
        raise ModelSpecError("a classical model has no 'custom_code'")
    post = _postprocessing(data, task)

    return ModelSpec(
        name=name,
        version=version,
        task=task,
        input=input_spec,
        preprocessing=tuple(dict(s) for s in steps),
        weights_file=wfile,
        weights_sha256=sha,
        folder=folder,
        modalities=modalities,
        classes=classes,
        labels=labels,
        positive_class=positive,
        cam=cam,
        card=_get(data, "card", str, False),
        intended_use=_get(data, "intended_use", str, False, ""),
        training=_get(data, "training", dict, False, {}),
        metrics=_get(data, "metrics", dict, False, {}),
        backend=backend,
        method=method,
        batch_size=batch_size,
        postprocessing=post,
        custom_code=custom,
    )


def _network_input(data: Mapping) -> InputSpec:
    inp = _get(data, "input", dict)
    sizes = {k: _get(inp, k, int) for k in ("height", "width", "channels")}
    if sizes["height"] < 1 or sizes["width"] < 1:
        raise ModelSpecError("input height and width must be >= 1")
    if sizes["channels"] not in (1, 3):
        raise ModelSpecError(f"input.channels must be 1 or 3, got {sizes['channels']}")
    return InputSpec(**sizes)


def _check_preprocessing(steps: list, input_spec: InputSpec) -> None:
    try:
        build_pipeline(steps)
    except TransformError as exc:
        raise ModelSpecError(f"preprocessing: {exc}") from None
    final = output_shape(steps)
    if final != (input_spec.height, input_spec.width):
        raise ModelSpecError(
            "preprocessing must end with a resize or letterbox to the input "
            f"{input_spec.height}x{input_spec.width} (it gives {final or 'a variable size'})"
        )


def _classical_method(data: Mapping, task: str) -> str:
    """The ``method`` of a classical model: a name from :data:`CLASSICAL_METHODS`."""
    method = _get(data, "method", str)
    if method not in CLASSICAL_METHODS:
        raise ModelSpecError(
            f"method {method!r} must be one of {', '.join(sorted(CLASSICAL_METHODS))}"
        )
    if task != "segmentation":
        raise ModelSpecError("a classical model must have task 'segmentation'")
    for key in ("weights", "input", "preprocessing"):
        if key in data:
            raise ModelSpecError(f"a classical model has no {key!r} (it runs {method!r})")
    return method


def _weights(data: Mapping) -> tuple[str, str]:
    w = _get(data, "weights", dict)
    wfile = _get(w, "file", str)
    if Path(wfile).name != wfile or wfile.startswith("."):
        raise ModelSpecError(f"weights.file {wfile!r} must be a file name inside the model folder")
    if wfile.lower().endswith(PICKLE_SUFFIXES):
        raise ModelSpecError(
            f"weights.file {wfile!r} must end in .keras or .h5: it is a pickle-based format, "
            "and reading a pickle can run code, so radview never loads one"
        )
    if not wfile.endswith(WEIGHT_SUFFIXES):
        raise ModelSpecError(f"weights.file {wfile!r} must end in .keras or .h5")
    sha = _get(w, "sha256", str).lower()
    if not _SHA256.match(sha):
        raise ModelSpecError("weights.sha256 must be 64 hexadecimal digits")
    return wfile, sha


def _custom_code(data: Mapping) -> CustomCode | None:
    """``custom_code``: ``{"file": "custom_layers.py", "sha256": "<64 hex>", "classes": [...]}``."""
    if data.get("custom_code") is None:
        return None
    c = _get(data, "custom_code", dict)
    extra = set(c) - {"file", "sha256", "classes"}
    if extra:
        raise ModelSpecError(f"custom_code: unknown field(s) {', '.join(sorted(extra))}")
    cfile = _get(c, "file", str)
    if Path(cfile).name != cfile or cfile.startswith(".") or not cfile.endswith(".py"):
        raise ModelSpecError(
            f"custom_code.file {cfile!r} must be a .py file name inside the model folder"
        )
    sha = _get(c, "sha256", str).lower()
    if not _SHA256.match(sha):
        raise ModelSpecError("custom_code.sha256 must be 64 hexadecimal digits")
    classes = _strings(_get(c, "classes", list), "custom_code.classes")
    bad = [n for n in classes if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n)]
    if not classes or bad:
        raise ModelSpecError("custom_code.classes must name the Python classes the file defines")
    return CustomCode(cfile, sha, classes)


def _postprocessing(data: Mapping, task: str) -> tuple[dict, ...]:
    """``postprocessing`` steps: ``{"op": "within_lungs", "model": NAME, "dilate_mm": x,
    "touching": bool}``."""
    steps = _get(data, "postprocessing", list, False, [])
    if steps and task != "segmentation":
        raise ModelSpecError("postprocessing is for segmentation models")
    out = []
    for step in steps:
        if not isinstance(step, Mapping) or step.get("op") not in POSTPROCESSING_OPS:
            known = ", ".join(POSTPROCESSING_OPS)
            raise ModelSpecError(f"postprocessing step {step!r} must have an op in {known}"[:200])
        extra = set(step) - {"op", "model", "dilate_mm", "touching"}
        if extra:
            raise ModelSpecError(f"within_lungs: unknown parameter(s) {', '.join(sorted(extra))}")
        model = _get(step, "model", str)
        if not _NAME.match(model) or model == data.get("name"):
            raise ModelSpecError(f"within_lungs: model {model!r} must name another model")
        dilate = _get(step, "dilate_mm", (int, float), False, 0.0)
        if not 0 <= dilate <= 50:
            raise ModelSpecError(f"within_lungs: dilate_mm must be 0 to 50, got {dilate}")
        touching = _get(step, "touching", bool, False, False)
        out.append(
            {"op": "within_lungs", "model": model, "dilate_mm": float(dilate), "touching": touching}
        )
    return tuple(out)
