"""Keras 3 / TensorFlow backend: the only module of radview that imports TensorFlow.

TensorFlow and Keras are imported inside the functions, when a model loads (3-4 s), and
only in the AI process (never in the viewer's: VTK's Mesa and TensorFlow's LLVM clash).

Safety: weights are loaded with ``keras.models.load_model(path, compile=False,
safe_mode=True)`` after the architecture in the file has been checked to use built-in Keras
layers only; ``Lambda`` layers and custom (registered or not) classes are refused, because
deserialising them can run code from the file.

Arrays: batches are (n, height, width, channels) float32, channels-last; CAMs are returned
on the conv layer's grid (h, w), 0..1 (see :mod:`ai.cam`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from ai import cam as cam_math

#: model classes allowed besides the layers of ``keras.layers``
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}
#: built-in layers refused anyway: they run Python code or load foreign graphs
_REFUSED_LAYERS = {"Lambda", "TFSMLayer"}

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
    """"GPU: <name>" when TensorFlow sees a GPU (memory growth on), else "CPU"."""
    _tf()
    return _state["device"]


# ----------------------------------------------------------------------------- safety


def _architecture(path: Path) -> dict:
    """The model config stored in a .keras zip or a legacy .h5 file."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        import h5py  # comes with Keras

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise ModelLoadError(f"{path.name} holds weights only, no model architecture")
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ModelLoadError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{path.name} is not a readable Keras model file ({exc})") from None


def _layer_configs(node):
    """Every layer entry of a model config, nested models included."""
    config = node.get("config") if isinstance(node, dict) else None
    if isinstance(config, dict):
        layers = config.get("layers")
        if isinstance(layers, list):
            for layer in layers:
                if isinstance(layer, dict):
                    yield layer
                    yield from _layer_configs(layer)


def check_architecture(path: str | Path) -> None:
    """Refuse models whose layers are not built-in Keras layers (Lambda, custom classes)."""
    keras = _keras()
    path = Path(path)
    config = _architecture(path)
    top = config.get("class_name")
    if top not in _MODEL_CLASSES:
        raise ModelLoadError(f"{path.name}: model class {top!r} is not a built-in Keras model")
    for layer in _layer_configs(config):
        cls = str(layer.get("class_name"))
        module = layer.get("module")
        name = layer.get("config", {}).get("name", "?")
        builtin = (
            cls in _MODEL_CLASSES
            or (isinstance(getattr(keras.layers, cls, None), type) and cls not in _REFUSED_LAYERS)
        )
        foreign = bool(module) and not str(module).startswith("keras")
        if not builtin or layer.get("registered_name") or foreign:
            raise ModelLoadError(
                f"{path.name}: layer {name!r} of class {cls!r} is not a built-in Keras layer; "
                "models with custom or Lambda layers are refused (safe mode)"
            )


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
        self, batch: np.ndarray, class_index: int | None = None,
        conv_layer: str | None = None, dense_layer: str | None = None,
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
        self, batch: np.ndarray, class_index: int | None = None, conv_layer: str | None = None,
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
        features, grads, probs, index = fn(np.asarray(batch, dtype=np.float32),
                                           tf.constant(want, dtype=tf.int32))
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


def load_model(path: str | Path, name: str = "") -> KerasModel:
    """Load a .keras (or legacy .h5) model in safe mode; compile=False.

    Check the sha256 first (:func:`ai.registry.verify_weights`): this function trusts the
    file's identity and only checks that its architecture is built from Keras layers.
    """
    path = Path(path)
    check_architecture(path)
    keras = _keras()
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types; report one line
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"{path.name} cannot be loaded: {text[:300]}") from None
    return KerasModel(model, name or path.stem)
