"""The AI process's main loop (runs in the spawned child; started by AIClient).

The backend (TensorFlow) is imported only when the first model loads. Models stay loaded,
cached by name (reloaded when a request names other weights). Input images are copied out
of the parent's shared-memory blocks; results are written into the blocks the request
names. Between stages the loop looks at the pipe for a Cancel of the running request.
The child never writes to stdout (fd 1 is pointed at stderr): the parent's stdout may be a
JSON contract.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import numpy as np

from ai import trust
from ai.classify import Cancelled, classify_image
from ai.model_file import ModelFileError, inspect_model_file
from ai.model_spec import ModelSpec, ModelSpecError
from ai.process import protocol as p
from ai.registry import UnknownModelError, WeightsError, verify_weights
from ai.segment import classical_model, make_segmenter, segment_probabilities, segment_volume
from ai.transforms import TransformError


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:500]


class Worker:
    """Serves requests from ``conn`` (a multiprocessing Connection) until Shutdown or EOF."""

    def __init__(self, conn):
        self.conn = conn
        self.models: dict[str, tuple[ModelSpec, object]] = {}
        self.specs: dict[str, ModelSpec] = {}  # helper specs known by name
        self.request_id: int | None = None
        self.attached = p.AttachCache()  # classify's reused blocks
        self.stop = False
        self.cancelled = ""  # why the running request stops ("" while it runs on)
        self.device = ""  # of the last network model loaded
        self.devices: dict[str, str] = {}  # model name -> where it runs
        self.granted: dict[str, trust.TrustedCode] = {}  # trusted models loaded, by name

    # -- plumbing --------------------------------------------------------------------------
    def send(self, message) -> None:
        self.conn.send(message)

    def progress(self, fraction: float, message: str) -> None:
        self.send(p.Progress(self.request_id or 0, float(fraction), message))

    def cancel_requested(self) -> bool:
        """Read what the parent sent meanwhile; True once a Cancel of this request (or a
        Shutdown) came. Never raises: classical methods poll it."""
        while not self.cancelled and self.conn.poll():
            message = self.conn.recv()
            if isinstance(message, p.Shutdown):
                self.stop = True
                self.cancelled = "shutting down"
            elif isinstance(message, p.Cancel) and message.request_id == self.request_id:
                self.cancelled = "cancelled"
            # a Cancel of an earlier request, already finished: nothing to do
        return bool(self.cancelled)

    def check_cancel(self) -> None:
        """Raise Cancelled when a Cancel of this request (or a Shutdown) came."""
        if self.cancel_requested():
            raise Cancelled(self.cancelled)

    # -- models ----------------------------------------------------------------------------
    def model(self, spec: ModelSpec):
        cached = self.models.get(spec.name)
        if (
            cached is not None
            and cached[0].weights_path == spec.weights_path
            and (cached[0].weights_sha256 == spec.weights_sha256)
            and cached[0].method == spec.method
            and cached[0].custom_code == spec.custom_code
            and self._still_trusted(spec)
        ):
            return cached[1]
        self.models.pop(spec.name, None)
        self.granted.pop(spec.name, None)
        if spec.is_classical:  # a radview function: no weights, no TensorFlow
            model = classical_model(spec)
            self.models[spec.name] = (spec, model)
            self.devices[spec.name] = "CPU"
            return model
        self.progress(0.05, f"loading model {spec.name}")
        path = verify_weights(spec)  # sha256 before any byte is deserialised
        report = inspect_model_file(path)  # damaged, pickle, wrong kind: refused here
        granted = trust.grant(spec, report)  # custom code or Lambda: only if the user trusts it
        from ai.backends import backend_for  # TensorFlow is imported here, the first time

        backend = backend_for(spec.weights_file)
        model = backend.load_model(path, spec.name, trusted=granted)
        if granted is not None:
            self.granted[spec.name] = granted
        self.device = backend.device_name()
        self.devices[spec.name] = self.device
        self.models[spec.name] = (spec, model)
        self.check_cancel()
        return model

    def _still_trusted(self, spec: ModelSpec) -> bool:
        """A loaded model that needed trust is reused only while the trust store still
        holds that trust (``radview models untrust`` takes effect at the next request)."""
        granted = self.granted.get(spec.name)
        return granted is None or trust.still_trusted(granted, spec.weights_sha256)

    def helper(self, name: str):
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownModelError(f"the preprocessing needs model {name!r}, which is not known")
        return spec, self.model(spec)

    # -- requests --------------------------------------------------------------------------
    def handle(self, request):
        for spec in getattr(request, "helpers", ()):
            self.specs[spec.name] = spec
        if isinstance(request, p.LoadModel):
            self.model(request.spec)
            for spec in request.helpers:
                self.model(spec)
            return {
                "name": request.spec.name,
                "version": request.spec.version,
                "device": self.devices.get(request.spec.name, self.device),
            }
        if isinstance(request, p.Classify):
            return self.classify(request)
        if isinstance(request, p.Segment):
            return self.segment(request)
        if isinstance(request, p.SegmentVolume):
            return self.segment_volume(request)
        raise TypeError(f"unknown request {type(request).__name__}")

    def classify(self, request: p.Classify) -> dict:
        model = self.model(request.spec)
        self.check_cancel()
        # read in place (no 14 MB copy of a 2k radiograph): the preprocessing never writes
        # into its input; the parent reuses its blocks, so the mappings stay open here
        prediction = classify_image(
            self.attached.array(request.image),
            request.meta,
            request.spec,
            model,
            context={"segment": make_segmenter(self.helper)},
            cam=request.cam,
            cam_class=request.cam_class,
            device=self.device,
            progress=self.progress,
            check_cancel=self.check_cancel,
        )
        has_cam = prediction.cam is not None and request.cam_out is not None
        if has_cam:
            self.attached.array(request.cam_out)[...] = prediction.cam
        return {
            "probabilities": prediction.probabilities,
            "label": prediction.label,
            "cam_class": prediction.cam_class if has_cam else None,
            "has_cam": has_cam,
            "device": self.device,
            "timings_s": prediction.timings_s,
        }

    def segment(self, request: p.Segment) -> dict:
        with p.Attached(request.image) as shared:
            image = np.array(shared, dtype=np.float32)
        model = self.model(request.spec)
        self.check_cancel()
        self.progress(0.3, "segmenting")
        probs = segment_probabilities(image, request.meta, request.spec, model)
        self.check_cancel()
        with p.Attached(request.out) as out:
            out[...] = probs
        return {
            "labels": {str(k): v for k, v in request.spec.labels.items()},
            "device": self.device,
        }

    def segment_volume(self, request: p.SegmentVolume) -> dict:
        model = self.model(request.spec)
        for name in request.spec.helper_models:
            self.helper(name)  # load now, before the first slice
        self.check_cancel()
        with p.Attached(request.volume) as volume, p.Attached(request.out) as out:
            info = segment_volume(
                volume,
                request.meta,
                request.spec,
                model,
                out,
                get_helper=self.helper,
                progress=lambda f, m: self.progress(0.1 + 0.9 * f, m),
                check_cancel=self.check_cancel,
                cancel_requested=self.cancel_requested,
            )
        return {
            **info,
            "labels": {str(k): v for k, v in request.spec.labels.items()},
            "device": self.devices.get(request.spec.name, self.device),
        }

    def run(self) -> None:
        while not self.stop:
            try:
                request = self.conn.recv()
            except (EOFError, OSError):  # the parent went away
                return
            if isinstance(request, p.Shutdown):
                return
            if isinstance(request, p.Cancel):
                continue  # arrived after its request finished
            self.request_id = getattr(request, "request_id", 0)
            self.cancelled = ""
            try:
                value = self.handle(request)
                reply = p.Result(self.request_id, value)
            except Cancelled as exc:
                reply = p.Error(self.request_id, p.CANCELLED, _one_line(exc))
            except (
                WeightsError,
                ModelSpecError,
                UnknownModelError,
                ModelFileError,
                trust.TrustError,
            ) as exc:
                reply = p.Error(self.request_id, p.MODEL, _one_line(exc))
            except Exception as exc:  # noqa: BLE001 - every failure goes back as one message
                reply = self._classify_failure(exc)
            try:
                self.send(reply)
            except (BrokenPipeError, OSError):
                return
            self.request_id = None

    def _classify_failure(self, exc: Exception) -> p.Error:
        module = type(exc).__module__
        if type(exc).__name__ == "ModelLoadError" and module.startswith("ai.backends"):
            return p.Error(self.request_id, p.MODEL, _one_line(exc))
        if isinstance(exc, TransformError | ValueError | IndexError | FileNotFoundError):
            return p.Error(self.request_id, p.INPUT, _one_line(exc))
        traceback.print_exc(file=sys.stderr)
        return p.Error(self.request_id, p.INTERNAL, f"{type(exc).__name__}: {_one_line(exc)}")


def main(conn) -> None:
    """Child entry point (the target of the spawned process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child ends
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        os.dup2(sys.stderr.fileno(), 1)  # nothing of ours or TensorFlow's reaches stdout
    except (OSError, ValueError, AttributeError):
        pass
    sys.stdout = sys.stderr
    Worker(conn).run()
