"""Keras 3 / TensorFlow backend: the only module of radview that imports TensorFlow.

TensorFlow and Keras are imported inside the functions, when a model loads (3-4 s), and
only in the AI process (never in the viewer's: VTK's Mesa and TensorFlow's LLVM clash).

Safety: weights are loaded with ``keras.models.load_model(path, compile=False,
safe_mode=True)`` after the architecture in the file has been checked to use built-in Keras
layers only; ``Lambda`` layers and custom (registered or not) classes are refused, because
deserialising them can run code from the file. A model the user trusts (:mod:`ai.trust`)
may use the classes of its custom code file, which is then run here (in the AI process,
never the viewer's) from the exact bytes that were hashed; a trusted model with Lambda
layers loads with ``safe_mode=False`` (its weights' sha256 is part of the trust).

Arrays: batches are (n, height, width, channels) float32, channels-last; CAMs are returned
on the conv layer's grid (h, w), 0..1 (see :mod:`ai.cam`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import types
from pathlib import Path

import numpy as np

from ai import cam as cam_math
from ai.model_file import (
    LAMBDA_LAYERS,
    MODEL_CLASSES,
    REFUSED_LAYERS,
    ModelFileError,
    ModelFileReport,
    custom_name,
    inspect_config,
    iter_objects,
    layer_entries,
    read_architecture,
)

#: model classes allowed besides the layers of ``keras.layers``
_MODEL_CLASSES = set(MODEL_CLASSES)
#: built-in layers refused unless trusted (Lambda) or always (TFSMLayer): they run Python
#: code stored in the file or load foreign graphs
_REFUSED_LAYERS = {*LAMBDA_LAYERS, *REFUSED_LAYERS}

_state: dict = {"configured": False, "device": "CPU"}


class ModelLoadError(RuntimeError):
    """The model file cannot be loaded safely (one-line message)."""


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence fd 2 while TensorFlow loads: its C++ start-up notes (oneDNN, CPU features)
    are printed before logging is set up and ignore TF_CPP_MIN_LOG_LEVEL. Python errors
    still arrive as exceptions."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tf():
    if "tensorflow" not in sys.modules:
        with _quiet_native_stderr():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401 - the only place radview imports TensorFlow
    import tensorflow as tf

    if not _state["configured"]:
        _state["configured"] = True
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except (RuntimeError, ValueError):  # already initialised: keep what TF chose
                pass
        if gpus:
            try:
                name = tf.config.experimental.get_device_details(gpus[0]).get("device_name")
            except (RuntimeError, ValueError):
                name = None
            _state["device"] = f"GPU: {name or gpus[0].name}"
    return tf


def _keras():
    _tf()
    import keras

    return keras


def device_name() -> str:
    """ "GPU: <name>" when TensorFlow sees a GPU (memory growth on), else "CPU"."""
    _tf()
    return _state["device"]


# ----------------------------------------------------------------------------- safety


def _is_builtin(keras, layer: dict) -> bool:
    cls = str(layer.get("class_name"))
    if cls in _MODEL_CLASSES:
        return True
    return isinstance(getattr(keras.layers, cls, None), type) and cls not in _REFUSED_LAYERS


def check_architecture(path: str | Path, trusted=None) -> ModelFileReport:
    """Refuse models whose objects are not built-in Keras ones; return the file's report.

    Without ``trusted`` (an :class:`ai.trust.TrustedCode`) only built-in Keras layers and
    objects pass: Lambda layers and custom classes (registered or not) are refused. With
    it, the classes it names and (``allow_lambda``) Lambda layers pass too.
    """
    keras = _keras()
    path = Path(path)
    try:
        kind, config = read_architecture(path)
        report = inspect_config(config, path, kind)
    except ModelFileError as exc:
        raise ModelLoadError(str(exc)) from None
    top = config.get("class_name")
    if top not in _MODEL_CLASSES:
        raise ModelLoadError(f"{path.name}: model class {top!r} is not a built-in Keras model")
    allowed = set(trusted.classes) if trusted is not None else set()
    allow_lambda = trusted is not None and trusted.allow_lambda
    layer_ids = {id(entry) for entry in layer_entries(config)}
    for obj in iter_objects(config.get("config")):
        cls = str(obj.get("class_name"))
        if cls == "__lambda__":
            continue  # the Lambda layer holding it is judged below
        name = (
            obj.get("config", {}).get("name", "?") if isinstance(obj.get("config"), dict) else "?"
        )
        custom = custom_name(obj)
        is_layer = id(obj) in layer_ids or cls in _REFUSED_LAYERS
        if custom is not None:
            if custom in allowed or custom.rsplit(">", 1)[-1] in allowed:
                continue
        elif cls in LAMBDA_LAYERS and allow_lambda:
            continue
        elif cls in allowed:  # a legacy .h5 names an unregistered custom class bare
            continue
        elif not is_layer or _is_builtin(keras, obj):
            continue
        if trusted is not None and cls not in LAMBDA_LAYERS and cls not in _REFUSED_LAYERS:
            raise ModelLoadError(
                f"{path.name}: {'layer' if is_layer else 'object'} {name!r} of class "
                f"{custom or cls!r} is not a built-in Keras layer nor one of the trusted custom "
                f"classes ({', '.join(sorted(allowed)) or 'none'}); refused"
            )
        raise ModelLoadError(
            f"{path.name}: layer {name!r} of class {custom or cls!r} is not a built-in Keras "
            "layer; models with custom or Lambda layers are refused (safe mode) unless you "
            "trust them"
        )
    return report


def _import_custom_code(trusted, referenced: tuple[str, ...] = ()) -> dict:
    """Run a trusted model's custom code (the bytes that were hashed) as a fresh module and
    return the custom objects for Keras: each class by its name and its registered name."""
    keras = _keras()
    module_name = (
        f"radview_custom_{re.sub(r'[^0-9a-zA-Z_]', '_', trusted.name)}_{trusted.code_sha256[:16]}"
    )
    module = sys.modules.get(module_name)
    if module is None:
        module = types.ModuleType(module_name)
        module.__file__ = str(trusted.code_path)
        sys.modules[module_name] = module
        try:
            exec(compile(trusted.code, str(trusted.code_path), "exec"), module.__dict__)  # noqa: S102 - trusted by the user (ai.trust)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: any error
            del sys.modules[module_name]
            raise ModelLoadError(
                f"{trusted.code_path.name} failed when imported: {type(exc).__name__}: "
                f"{(str(exc).strip().splitlines() or [''])[0][:200]}"
            ) from None
    objects = {}
    for cls_name in trusted.classes:
        obj = getattr(module, cls_name, None)
        if obj is None:
            raise ModelLoadError(
                f"{trusted.code_path.name} defines no {cls_name!r} "
                "(listed in model.json custom_code.classes)"
            )
        objects[cls_name] = obj
        registered = keras.saving.get_registered_name(obj)
        objects[registered] = obj
        for name in referenced:  # the file's ``Package>Name``, whatever the code registers
            if name.rsplit(">", 1)[-1] == cls_name:
                objects[name] = obj
    return objects


# ----------------------------------------------------------------------------- model


class KerasModel:
    """A loaded Keras model with prediction and class activation maps.

    The forward passes are wrapped in ``tf.function`` (traced once per input shape), which
    halves the per-call time of small models against eager calls.
    """

    def __init__(self, model, name: str = ""):
        self.model = model
        self.name = name or model.name
        self._fns: dict = {}

    @property
    def input_shape(self) -> tuple:
        return tuple(self.model.inputs[0].shape[1:])

    def _compiled(self, key, make):
        if key not in self._fns:
            self._fns[key] = _tf().function(make(), reduce_retracing=True)
        return self._fns[key]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Model outputs for a batch (n, h, w, c) float32 → numpy (n, ...)."""
        fn = self._compiled("predict", lambda: lambda x: self.model(x, training=False))
        return np.asarray(fn(np.asarray(batch, dtype=np.float32)))

    def _layer(self, name: str | None, kind: str):
        keras = _keras()
        if name:
            try:
                return self.model.get_layer(name)
            except ValueError:
                raise ModelLoadError(f"model {self.name!r} has no layer {name!r}") from None
        for layer in reversed(self.model.layers):
            if kind == "conv" and len(getattr(layer.output, "shape", ())) == 4:
                return layer
            if kind == "dense" and isinstance(layer, keras.layers.Dense):
                return layer
        raise ModelLoadError(f"model {self.name!r} has no {kind} layer for a CAM")

    def _sub(self, outputs):
        """A model sharing this one's layers, returning ``outputs``."""
        keras = _keras()
        inputs = self.model.inputs
        return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)

    def predict_with_cam(
        self,
        batch: np.ndarray,
        class_index: int | None = None,
        conv_layer: str | None = None,
        dense_layer: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """CAM for a conv → GAP → dense model, in one forward pass.

        Returns (probabilities (n, classes), cam (h, w) 0..1 of batch item 0, class index);
        ``class_index`` None means the predicted class of item 0.
        """
        conv = self._layer(conv_layer, "conv")
        dense = self._layer(dense_layer, "dense")

        def make():
            sub = self._sub([conv.output, self.model.output])
            return lambda x: sub(x, training=False)

        fn = self._compiled(("cam", conv.name), make)
        features, probs = fn(np.asarray(batch, dtype=np.float32))
        probs = np.asarray(probs)
        index = int(np.argmax(probs[0])) if class_index is None else int(class_index)
        kernel = np.asarray(dense.kernel)
        return probs, cam_math.class_activation_map(np.asarray(features)[0], kernel, index), index

    def predict_with_gradcam(
        self,
        batch: np.ndarray,
        class_index: int | None = None,
        conv_layer: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Grad-CAM for any Keras model: d(class score)/d(conv output) with a GradientTape.

        The class score is the pre-softmax logit when the model ends in a softmax (a Dense
        with softmax activation, or a softmax Activation layer), else the output itself.
        Returns (probabilities (n, classes), map (h, w) 0..1 of item 0, class index).
        """
        tf = _tf()
        conv = self._layer(conv_layer, "conv")
        fn = self._compiled(("gradcam", conv.name), lambda: self._gradcam_fn(conv))
        want = -1 if class_index is None else int(class_index)
        features, grads, probs, index = fn(
            np.asarray(batch, dtype=np.float32), tf.constant(want, dtype=tf.int32)
        )
        cam = cam_math.grad_cam(np.asarray(features)[0], np.asarray(grads)[0])
        return np.asarray(probs), cam, int(index)

    def _gradcam_fn(self, conv):
        tf = _tf()
        keras = _keras()
        last = self.model.layers[-1]
        activation = getattr(getattr(last, "activation", None), "__name__", "")
        dense_softmax = isinstance(last, keras.layers.Dense) and activation == "softmax"
        softmax_layer = isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and activation == "softmax"
        )
        head = last.input if (dense_softmax or softmax_layer) else self.model.output
        sub = self._sub([conv.output, head])

        def run(x, want):
            with tf.GradientTape() as tape:
                features, out = sub(x, training=False)
                tape.watch(features)
                if dense_softmax:
                    logits = tf.matmul(out, last.kernel)
                    if last.bias is not None:
                        logits = logits + last.bias
                else:
                    logits = out
                probs = tf.nn.softmax(logits) if (dense_softmax or softmax_layer) else logits
                index = tf.where(want < 0, tf.argmax(probs[0], output_type=tf.int32), want)
                score = tf.gather(logits[0], index)
            grads = tape.gradient(score, features)
            if grads is None:  # found while tracing
                raise ModelLoadError(f"layer {conv.name!r} does not lead to the class score")
            return features, grads, probs, index

        return run


def load_model(path: str | Path, name: str = "", trusted=None) -> KerasModel:
    """Load a .keras (or legacy .h5) model in safe mode; compile=False.

    Check the sha256 first (:func:`ai.registry.verify_weights`): this function trusts the
    file's identity and only checks that its architecture is built from Keras layers, or
    from the classes of ``trusted`` (:func:`ai.trust.grant`), whose code it then runs.
    """
    path = Path(path)
    report = check_architecture(path, trusted)
    keras = _keras()
    custom_objects = None
    if trusted is not None and trusted.code:
        custom_objects = _import_custom_code(trusted, report.custom)
    safe = not (trusted is not None and trusted.allow_lambda and report.lambdas)
    try:
        model = keras.models.load_model(
            path, custom_objects=custom_objects, compile=False, safe_mode=safe
        )
    except Exception as exc:  # noqa: BLE001 - Keras raises many types; report one line
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"{path.name} cannot be loaded: {text[:300]}") from None
    return KerasModel(model, name or path.stem)
