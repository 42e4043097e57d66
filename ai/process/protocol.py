"""Messages between the viewer (parent) and the AI process (child), and shared arrays.

Everything here is small and picklable; images and maps never travel in a message: they
live in shared-memory blocks (:class:`SharedArray`) that the parent creates, names in the
request (:class:`ArrayRef`) and unlinks when the request is over. The child only attaches.

One request at a time: the parent sends a request, then reads :class:`Progress` messages
until a :class:`Result` or an :class:`Error` with the same ``request_id``. While it waits it
may send :class:`Cancel`; the child checks for it between stages and answers
``Error(kind="cancelled")``. :class:`Shutdown` ends the child's loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from multiprocessing import shared_memory

import numpy as np

from ai.model_spec import ModelSpec

# Error kinds
CANCELLED = "cancelled"  # the request was cancelled
MODEL = "model"  # the model cannot be used (weights, safety, spec)
INPUT = "input"  # the image or request cannot be processed
INTERNAL = "internal"  # anything else (a bug)


@dataclass(frozen=True)
class ArrayRef:
    """Where an array lives: a shared-memory block name, shape and numpy dtype string."""

    shm: str
    shape: tuple[int, ...]
    dtype: str


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class LoadModel:
    """Load (or keep) ``spec``'s model and the helper models its preprocessing names."""

    request_id: int
    spec: ModelSpec
    helpers: tuple[ModelSpec, ...] = ()


@dataclass(frozen=True)
class Classify:
    """Classify ``image`` (float32 rows × cols, modality units) described by ``meta``.

    With ``cam``, the map (float32 rows × cols, 0..1) is written into ``cam_out``.
    ``cam_class`` None explains the predicted class.
    """

    request_id: int
    spec: ModelSpec
    image: ArrayRef
    meta: dict
    helpers: tuple[ModelSpec, ...] = ()
    cam: bool = True
    cam_class: str | None = None
    cam_out: ArrayRef | None = None


@dataclass(frozen=True)
class Segment:
    """Segment ``image``; per-label probabilities float32 (labels, rows, cols) go to ``out``."""

    request_id: int
    spec: ModelSpec
    image: ArrayRef
    meta: dict
    out: ArrayRef


@dataclass(frozen=True)
class SegmentVolume:
    """Label a whole volume: ``volume`` (k, j, i) int16 or float32 in modality units.

    The child reads the parent's block in place (no copy) and writes uint8 labels
    (k, j, i) into ``out``. ``meta``: photometric, modality, spacing_mm (k, j, i),
    pixel_spacing_mm, direction (see :func:`ai.segment.volume_input`). Progress messages
    say "slice n/N"; a Cancel is honoured between batches of slices.
    """

    request_id: int
    spec: ModelSpec
    volume: ArrayRef
    meta: dict
    out: ArrayRef
    helpers: tuple[ModelSpec, ...] = ()


@dataclass(frozen=True)
class Cancel:
    """Stop request ``request_id`` at the next check (between stages)."""

    request_id: int


@dataclass(frozen=True)
class Shutdown:
    """End the child's loop (it exits with status 0)."""


# ------------------------------------------------------------------------------ responses


@dataclass(frozen=True)
class Progress:
    """``fraction`` 0..1 of request ``request_id`` done, and what is happening."""

    request_id: int
    fraction: float
    message: str


@dataclass(frozen=True)
class Result:
    """Request ``request_id`` succeeded; ``value`` holds small data (arrays are in shm)."""

    request_id: int
    value: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    """Request ``request_id`` failed: ``kind`` (CANCELLED, MODEL, INPUT, INTERNAL), one line."""

    request_id: int
    kind: str
    message: str


# ------------------------------------------------------------------------------ shared arrays


class SharedArray:
    """A numpy array in a new shared-memory block, owned by the parent.

    Use as a context manager, or call :meth:`release` in a ``finally``: it closes and unlinks
    the block, so none is leaked whatever happens to the request or to the child.
    """

    def __init__(self, shape: tuple[int, ...], dtype: str | np.dtype = np.float32):
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        self._shm = shared_memory.SharedMemory(create=True, size=nbytes)
        self.array = np.ndarray(shape, dtype=dtype, buffer=self._shm.buf)
        self.ref = ArrayRef(self._shm.name, tuple(int(s) for s in shape), dtype.str)

    @classmethod
    def copy_of(cls, array: np.ndarray) -> SharedArray:
        shared = cls(array.shape, array.dtype)
        shared.array[...] = array
        return shared

    def release(self) -> None:
        if self._shm is None:
            return
        self.array = None
        shm, self._shm = self._shm, None
        shm.close()
        try:
            shm.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> SharedArray:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Attached:
    """The child's view of a parent's block (context manager; closes, never unlinks)."""

    def __init__(self, ref: ArrayRef):
        self._shm = shared_memory.SharedMemory(name=ref.shm, create=False)
        self.array = np.ndarray(ref.shape, dtype=np.dtype(ref.dtype), buffer=self._shm.buf)

    def __enter__(self) -> np.ndarray:
        return self.array

    def __exit__(self, *exc) -> None:
        self.array = None
        try:
            self._shm.close()
        except BufferError:  # a view is still referenced (a traceback's frame): the mapping
            pass  # goes with the last view; the parent unlinks the block in any case
