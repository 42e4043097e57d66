"""AIClient: the viewer's (and the CLI's) handle on the AI process.

Blocking calls with callbacks, meant to run on a worker thread (never the GUI thread)::

    client = AIClient()                      # nothing starts yet
    pred = client.classify(image, meta, "cxr-covid",
                           progress=lambda f, msg: ..., cancelled=lambda: flag)
    client.close()                           # at application exit

- The child is started on first use with ``multiprocessing.get_context("spawn")`` (a fresh
  interpreter: no Qt/VTK state inherited); TensorFlow is imported there, never here.
- Images go through shared memory (:class:`ai.process.protocol.SharedArray`), created here
  and unlinked in ``finally`` whatever happens.
- ``progress(fraction, message)`` and ``cancelled()`` are called on the calling thread
  (every ``poll_s`` seconds while waiting). :meth:`cancel` may be called from any thread.
- A child that dies (crash, kill, out of memory) or does not answer within
  ``request_timeout`` s raises :class:`AIProcessError`; the next call starts a new child.
- Calls from several threads are serialised (one request at a time).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from ai.classify import Cancelled, Prediction
from ai.model_spec import ModelSpec
from ai.process import protocol as p
from ai.registry import Registry

#: image dtypes classify sends through shared memory unconverted (the child makes float32)
_WIRE_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32))

ProgressCallback = Callable[[float, str], None]


class AIProcessError(RuntimeError):
    """The AI process stopped or hung; it is restarted on the next call."""


class AIRequestError(RuntimeError):
    """The AI process refused or failed a request; ``kind`` is protocol.MODEL/INPUT/INTERNAL."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class AIClient:
    """Talks to one AI child process (started lazily, restarted after a crash)."""

    def __init__(
        self,
        registry: Registry | None = None,
        request_timeout: float = 600.0,
        cancel_grace: float = 60.0,
        poll_s: float = 0.02,
    ):
        """``request_timeout``: seconds a request may take (model load included) before the
        child is killed; ``cancel_grace``: seconds the child has to acknowledge a Cancel."""
        self.registry = registry
        self.request_timeout = request_timeout
        self.cancel_grace = cancel_grace
        self.poll_s = poll_s
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None
        self._conn = None
        self._blocks = p.ReusableBlocks()  # classify's image and CAM blocks
        self._lock = threading.RLock()
        self._cancel = threading.Event()
        self._next_id = 0
        self._closed = False

    # -- process ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The child's process id, or None when it is not running."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def start(self) -> None:
        """Start the child now (otherwise the first request does). Returns at once."""
        with self._lock:
            if self._closed:
                raise AIProcessError("the AI client is closed")
            if self._proc is not None and self._proc.is_alive():
                return
            self._discard()
            from ai.process import worker  # no TensorFlow: the worker imports it lazily

            parent, child = self._ctx.Pipe(duplex=True)
            proc = self._ctx.Process(
                target=worker.main, args=(child,), name="radview-ai", daemon=True
            )
            proc.start()
            child.close()
            self._proc, self._conn = proc, parent

    def _discard(self) -> int | None:
        """Forget the current child (killing it if still alive); return its exit code."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        code = proc.exitcode
        if code is not None:
            proc.close()
        return code

    def _died(self, what: str = "stopped unexpectedly") -> AIProcessError:
        code = self._discard()
        return AIProcessError(f"the AI process {what} (exit code {code}); it will be restarted")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child (cancelling a running request). Safe to call twice, from any thread."""
        self._closed = True
        self._cancel.set()
        if not self._lock.acquire(timeout=timeout):
            proc = self._proc
            if proc is not None and proc.is_alive():
                proc.kill()  # the waiting thread then gets AIProcessError
            return
        try:
            if self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(p.Shutdown())
                except (BrokenPipeError, OSError):
                    pass
                self._proc.join(timeout)
            self._discard()
            self._blocks.release()
        finally:
            self._lock.release()

    def __enter__(self) -> AIClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cancel(self) -> None:
        """Cancel the running request (from any thread); it raises Cancelled in its caller."""
        self._cancel.set()

    # -- requests -----------------------------------------------------------------------------
    def spec(self, model: str | ModelSpec) -> ModelSpec:
        """A ModelSpec from a name (looked up in the registry) or a ModelSpec."""
        if isinstance(model, ModelSpec):
            return model
        registry = self.registry or Registry()
        return registry.get(model)

    def _helpers(self, spec: ModelSpec) -> tuple[ModelSpec, ...]:
        return tuple(self.spec(name) for name in spec.helper_models)

    def _request(self, make, progress: ProgressCallback | None, cancelled) -> dict:
        """Send ``make(request_id)``, wait for its answer; the caller holds the lock."""
        if self._closed:
            raise AIProcessError("the AI client is closed")
        self.start()
        self._next_id += 1
        rid = self._next_id
        conn, proc = self._conn, self._proc
        try:
            conn.send(make(rid))
        except (BrokenPipeError, EOFError, OSError):
            raise self._died() from None
        deadline = time.monotonic() + self.request_timeout
        cancel_deadline = None
        while True:
            if cancel_deadline is None and (self._cancel.is_set() or (cancelled and cancelled())):
                cancel_deadline = time.monotonic() + self.cancel_grace
                try:
                    conn.send(p.Cancel(rid))
                except (BrokenPipeError, OSError):
                    raise self._died() from None
            try:
                ready = conn.poll(self.poll_s)
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                raise self._died() from None
            if message is None:
                now = time.monotonic()
                if not proc.is_alive():
                    raise self._died()
                if now > deadline or (cancel_deadline is not None and now > cancel_deadline):
                    raise self._died(f"did not answer within {self.request_timeout:g} s")
                continue
            if getattr(message, "request_id", None) != rid:
                continue  # a late answer to an earlier request
            if isinstance(message, p.Progress):
                if progress is not None:
                    progress(message.fraction, message.message)
            elif isinstance(message, p.Result):
                return message.value
            elif isinstance(message, p.Error):
                if message.kind == p.CANCELLED:
                    raise Cancelled(message.message)
                raise AIRequestError(message.kind, message.message)

    def load_model(
        self,
        model: str | ModelSpec,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict:
        """Load a model in the child (sha256-checked); returns {"name", "version", "device"}.

        Optional: classify loads its model on first use. Raises AIRequestError (kind
        ``model``) for weights that do not match model.json or are unsafe.
        """
        spec = self.spec(model)
        helpers = self._helpers(spec)
        with self._lock:
            self._cancel.clear()
            return self._request(lambda rid: p.LoadModel(rid, spec, helpers), progress, cancelled)

    def classify(
        self,
        image: np.ndarray,
        meta: Mapping,
        model: str | ModelSpec,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
        cam: bool = True,
        cam_class: str | None = None,
    ) -> Prediction:
        """Classify one 2D image (rows, cols) in modality units; see ai.classify.Prediction.

        ``meta``: photometric, modality (see :func:`ai.classify.image_from_volume`).
        Raises Cancelled, AIRequestError or AIProcessError.
        """
        spec = self.spec(model)
        helpers = self._helpers(spec)
        image = np.asarray(image)
        if image.dtype not in _WIRE_DTYPES:  # stored 8/16-bit pixels cross as they are
            image = image.astype(np.float32)  # (half the bytes, no conversion here)
        if image.ndim != 2 or image.size == 0:
            raise ValueError(f"expected one 2D image (rows, cols), got shape {image.shape}")
        want_cam = cam and spec.cam is not None
        with self._lock:
            self._cancel.clear()
            # blocks reused from one classify to the next (no page faults, no create/unlink)
            shared_in, ref_in = self._blocks.get("in", image.shape, image.dtype)
            shared_in[...] = image
            shared_out, ref_out = (
                self._blocks.get("out", image.shape, np.float32) if want_cam else (None, None)
            )
            try:
                value = self._request(
                    lambda rid: p.Classify(
                        rid, spec, ref_in, dict(meta), helpers, want_cam, cam_class, ref_out
                    ),
                    progress,
                    cancelled,
                )
                cam_map = np.array(shared_out) if value.get("has_cam") else None
            finally:
                del shared_in, shared_out
                if self._closed:
                    self._blocks.release()
        return Prediction(
            model=spec.name,
            version=spec.version,
            device=value.get("device", ""),
            probabilities=value["probabilities"],
            label=value["label"],
            cam=cam_map,
            cam_class=value.get("cam_class"),
            timings_s=value.get("timings_s", {}),
        )

    def segment(
        self,
        image: np.ndarray,
        meta: Mapping,
        model: str | ModelSpec,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Per-label probabilities float32 (labels, rows, cols) on the image's own grid."""
        spec = self.spec(model)
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2 or image.size == 0:
            raise ValueError(f"expected one 2D image (rows, cols), got shape {image.shape}")
        return self._exchange(
            image,
            (len(spec.labels), *image.shape),
            np.float32,
            lambda rid, ref_in, ref_out: p.Segment(rid, spec, ref_in, dict(meta), ref_out),
            progress,
            cancelled,
        )

    def segment_volume(
        self,
        volume_array: np.ndarray,
        meta: Mapping,
        model: str | ModelSpec,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """uint8 labels (k, j, i) of a whole volume, on the volume's own grid.

        ``volume_array``: (k, j, i) in modality units (Hounsfield units for CT); int16 is
        sent as is, anything else as float32, once, through shared memory. ``meta``: see
        :func:`ai.segment.volume_input` (which makes both from a Volume). The child runs the
        model slice by slice in batches (``progress`` gets "slice n/N") and applies the
        spec's postprocessing (``within_lungs`` on CT). Label n is ``spec.labels[n]``.
        Raises Cancelled, AIRequestError or AIProcessError; the process stays usable after
        a cancel.
        """
        spec = self.spec(model)
        if spec.task != "segmentation":
            raise ValueError(f"model {spec.name!r} is a {spec.task} model, not a segmenter")
        helpers = self._helpers(spec)
        volume = np.asarray(volume_array)
        if volume.dtype != np.int16:
            volume = volume.astype(np.float32)
        if volume.ndim != 3 or volume.size == 0:
            raise ValueError(f"expected a volume (k, j, i), got shape {volume.shape}")
        return self._exchange(
            volume,
            volume.shape,
            np.uint8,
            lambda rid, ref_in, ref_out: p.SegmentVolume(
                rid, spec, ref_in, dict(meta), ref_out, helpers
            ),
            progress,
            cancelled,
        )

    def _exchange(self, array, out_shape, out_dtype, make, progress, cancelled) -> np.ndarray:
        """Copy ``array`` into a shared block, send ``make(request_id, in_ref, out_ref)`` and
        return a copy of the output block (``out_shape``, ``out_dtype``); both blocks are
        unlinked whatever happens."""
        with self._lock:
            self._cancel.clear()
            shared_in = p.SharedArray.copy_of(array)
            shared_out = p.SharedArray(out_shape, out_dtype)
            try:
                self._request(
                    lambda rid: make(rid, shared_in.ref, shared_out.ref), progress, cancelled
                )
                return np.array(shared_out.array)
            finally:
                shared_in.release()
                shared_out.release()
