"""What a weights file is and what its architecture needs, read without TensorFlow.

:func:`inspect_model_file` opens a ``.keras`` (Keras 3 zip) or ``.h5`` (legacy HDF5) file by
its first bytes, never by its name alone, reads only the stored architecture (JSON) and
lists what loading it would need beyond built-in Keras objects:

- ``custom``: classes or functions from outside Keras (a ``registered_name``, a module that
  is not ``keras``, a ``Package>Name`` class name, a plain Python function);
- ``lambdas``: ``Lambda`` layers, whose Python bytecode is stored in the file itself;
- ``refused``: objects radview never loads (``TFSMLayer``: a foreign TensorFlow graph).

Every problem is a :class:`ModelFileError` with a one-line message naming the file: a
damaged or truncated zip, an HDF5 file named ``.keras`` (and the reverse), a weights-only
HDF5 file, a Python pickle (reading one runs code) or a zip holding one. The viewer and the
CLI use this (hashing and parsing only); the AI process runs it again before loading, and
the Keras backend adds its check of layer classes against ``keras.layers``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ai.model_spec import PICKLE_SUFFIXES

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: the largest architecture (config.json / model_config) read, in bytes
MAX_CONFIG_BYTES = 64 << 20
#: layers that run Python stored in the file (allowed only for a trusted model)
LAMBDA_LAYERS = ("Lambda",)
#: layers never loaded, trusted or not
REFUSED_LAYERS = ("TFSMLayer",)
#: model classes of Keras itself
MODEL_CLASSES = ("Functional", "Sequential", "Model")


class ModelFileError(ValueError):
    """The weights file is damaged, of the wrong kind or unsafe to read (one line)."""


@dataclass(frozen=True)
class ModelFileReport:
    """``kind``: ``keras`` (zip) or ``h5``; the names loading needs beyond Keras itself."""

    path: Path
    kind: str
    model_class: str
    custom: tuple[str, ...] = ()
    lambdas: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    layer_classes: tuple[str, ...] = ()

    @property
    def needs_code(self) -> bool:
        """True when loading runs code that is not Keras's (custom classes or Lambdas)."""
        return bool(self.custom or self.lambdas)


def _looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def file_kind(path: Path) -> str:
    """``keras`` (a zip), ``h5`` (HDF5) by the first bytes; ModelFileError otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise ModelFileError(f"{path.name}: no such file") from None
    except OSError as exc:
        raise ModelFileError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if head.startswith(ZIP_MAGIC) or head.startswith(b"PK\x05\x06"):
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    if _looks_like_pickle(head):
        raise ModelFileError(
            f"{path.name} is a Python pickle, not a Keras model: reading a pickle can run "
            "code, so radview never loads it"
        )
    raise ModelFileError(
        f"{path.name} is not a readable Keras model file (neither a .keras zip nor an HDF5 file)"
    )


def read_architecture(path: str | Path) -> tuple[str, dict]:
    """(kind, model config) of a weights file; ModelFileError (one line) for any problem."""
    path = Path(path)
    kind = file_kind(path)
    suffix = path.suffix.lower()
    if kind == "h5" and suffix == ".keras":
        raise ModelFileError(
            f"{path.name} is a legacy HDF5 (.h5) model, not a Keras 3 zip: "
            "name the file .h5 (and in model.json)"
        )
    if kind == "keras" and suffix == ".h5":
        raise ModelFileError(
            f"{path.name} is a Keras 3 zip, not HDF5: name the file .keras (and in model.json)"
        )
    raw = _zip_config(path) if kind == "keras" else _h5_config(path)
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"{path.name}: the stored architecture is not valid JSON ({exc})"[:300]
        ) from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path.name}: the stored architecture is not a model config")
    return kind, config


def _zip_config(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            for name in names:
                if name.lower().endswith(PICKLE_SUFFIXES):
                    raise ModelFileError(
                        f"{path.name} holds a Python pickle ({name}): reading "
                        "it can run code, so radview never loads it"
                    )
                if name.startswith(("/", "\\")) or ".." in Path(name).parts:
                    raise ModelFileError(f"{path.name} holds a file outside the archive ({name})")
            if "config.json" not in names:
                raise ModelFileError(
                    f"{path.name} is a zip without config.json: not a Keras model file"
                )
            if z.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{path.name}: config.json is too large")
            if "model.weights.h5" not in names and "model.weights.npz" not in names:
                raise ModelFileError(f"{path.name} holds no weights (model.weights.h5)")
            bad = z.testzip()  # CRC of every member: a damaged file is caught here
            if bad is not None:
                raise ModelFileError(f"{path.name} is damaged (member {bad} fails its checksum)")
            return z.read("config.json")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path.name} is not a readable Keras model file: damaged or truncated zip ({exc})"[
                :300
            ]
        ) from None


def _h5_config(path: Path) -> bytes | str:
    try:
        import h5py  # comes with Keras; no TensorFlow
    except ImportError:
        raise ModelFileError(
            f"{path.name}: cannot read HDF5 files (h5py is not installed)"
        ) from None
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise ModelFileError(f"{path.name} holds weights only, no model architecture")
            if len(raw) > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{path.name}: the stored architecture is too large")
            return raw.decode() if isinstance(raw, bytes) else str(raw)
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(
            f"{path.name} is not a readable Keras model file: damaged or truncated HDF5 ({exc})"[
                :300
            ]
        ) from None


def iter_objects(node, depth: int = 0):
    """Every serialised object (a dict with ``class_name``) under ``node``."""
    if depth > 200:
        raise ModelFileError("the stored architecture is nested too deeply")
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for key, value in node.items():
            if key != "compile_config":  # loaded with compile=False: never deserialised
                yield from iter_objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from iter_objects(value, depth + 1)


def layer_entries(node):
    """Every entry of a ``layers`` list in a model config (nested models included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "layers" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, dict))
            if key != "compile_config":
                yield from layer_entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from layer_entries(value)


def _is_keras_module(module) -> bool:
    return module is None or module == "keras" or str(module).startswith("keras.")


def custom_name(obj: dict) -> str | None:
    """The name a non-Keras object is looked up by, or None for a Keras object.

    Custom classes carry a ``registered_name`` (``Package>Name`` or ``Name``), a module that
    is not Keras (Keras 3 zip) or a ``Package>Name`` class name (legacy HDF5); a plain
    Python function is ``{"module": "builtins", "class_name": "function", "config": name}``.
    """
    cls = str(obj.get("class_name"))
    module = obj.get("module")
    registered = obj.get("registered_name")
    if cls.startswith("__") and cls.endswith("__"):  # __keras_tensor__, __tuple__, __lambda__
        return None
    if cls == "function" and module == "builtins":
        return str(obj.get("config"))
    if registered and registered != cls or (registered and not _is_keras_module(module)):
        return str(registered)
    if registered or ">" in cls or not _is_keras_module(module):
        return cls
    return None


def inspect_config(config: dict, path: Path, kind: str = "keras") -> ModelFileReport:
    """The report of an already read architecture (see the module docstring)."""
    custom: dict[str, None] = {}
    lambdas: dict[str, None] = {}
    refused: dict[str, None] = {}
    layers: dict[str, None] = {}
    layer_ids = {id(entry) for entry in layer_entries(config)}
    for obj in iter_objects(config.get("config")):
        cls = str(obj.get("class_name"))
        inner = obj.get("config") if isinstance(obj.get("config"), dict) else {}
        label = str(inner.get("name") or obj.get("name") or cls)
        if cls == "__lambda__" or cls in LAMBDA_LAYERS:
            if cls in LAMBDA_LAYERS:
                lambdas[label] = None
            continue
        if cls in REFUSED_LAYERS:
            refused[label] = None
            continue
        name = custom_name(obj)
        if name is not None:
            custom[name] = None
        elif id(obj) in layer_ids:
            layers[cls] = None
    return ModelFileReport(
        path=path,
        kind=kind,
        model_class=str(config.get("class_name")),
        custom=tuple(custom),
        lambdas=tuple(lambdas),
        refused=tuple(refused),
        layer_classes=tuple(layers),
    )


def inspect_model_file(path: str | Path) -> ModelFileReport:
    """Read ``path``'s architecture and report what loading it needs (ModelFileError if bad)."""
    path = Path(path)
    kind, config = read_architecture(path)
    return inspect_config(config, path, kind)
