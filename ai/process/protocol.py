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

    @property
    def nbytes(self) -> int:
        return 0 if self._shm is None else self._shm.size

    def release(self) -> None:
        if self._shm is None:
            return
        self.array = None
        shm, self._shm = self._shm, None
        try:
            shm.close()
        except BufferError:  # a view is still referenced: the mapping goes with it
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> SharedArray:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class ReusableBlocks:
    """Parent-owned blocks kept from one request to the next, one per role ("in", "out").

    A request of the same size or smaller reuses its role's block (its pages are already
    mapped on both sides: no page faults, no create/unlink); a larger one replaces it.
    :meth:`release` (at close) unlinks them all. Callers hold the client's lock.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, SharedArray] = {}

    def get(self, role: str, shape: tuple[int, ...], dtype) -> tuple[np.ndarray, ArrayRef]:
        """(array view of ``shape``/``dtype`` in the role's block, its ArrayRef)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        block = self._blocks.get(role)
        if block is None or block.nbytes < nbytes:
            if block is not None:
                block.release()
            block = self._blocks[role] = SharedArray((nbytes,), np.uint8)
        view = np.ndarray(shape, dtype=dtype, buffer=block._shm.buf)
        return view, ArrayRef(block.ref.shm, shape, dtype.str)

    def release(self) -> None:
        for block in self._blocks.values():
            block.release()
        self._blocks.clear()


class AttachCache:
    """The child's mappings of the parent's reused blocks, by name (at most ``size``; the
    oldest is closed first). A block the parent has unlinked stays mapped here until it is
    evicted, so at most ``size`` stale blocks' memory is held."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._maps: dict[str, shared_memory.SharedMemory] = {}

    def array(self, ref: ArrayRef) -> np.ndarray:
        shm = self._maps.pop(ref.shm, None)
        if shm is None:
            shm = shared_memory.SharedMemory(name=ref.shm, create=False)
        self._maps[ref.shm] = shm  # most recent last
        while len(self._maps) > self.size:
            old = self._maps.pop(next(iter(self._maps)))
            try:
                old.close()
            except BufferError:
                pass
        return np.ndarray(ref.shape, dtype=np.dtype(ref.dtype), buffer=shm.buf)

    def close(self) -> None:
        for shm in self._maps.values():
            try:
                shm.close()
            except BufferError:
                pass
        self._maps.clear()


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
