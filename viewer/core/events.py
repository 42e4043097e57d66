"""A tiny signal: models emit, views listen (no Qt in the core, see DESIGN.md).

``Signal`` is a list of callbacks called in connection order by ``emit(*args)``:

* a bound method is held weakly, so a view that goes away stops listening without having
  to disconnect; plain functions and lambdas are held strongly;
* connecting the same callback twice is a no-op (one emit -> one call per slot);
* a slot may connect or disconnect slots (itself included) while the signal emits: a slot
  disconnected during an emit is not called afterwards in that emit, one connected during
  it is called from the next emit on;
* an exception in one slot is logged (``logging``, logger ``viewer.core.events``) and the
  remaining slots still run.

Emits happen on the caller's thread: a Qt view that receives a signal emitted from a
worker thread must hop to the GUI thread itself.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Slot = Callable[..., Any]


class _Strong:
    """Strong reference with the same call interface as ``weakref.WeakMethod``."""

    __slots__ = ("target",)

    def __init__(self, target: Slot) -> None:
        self.target = target

    def __call__(self) -> Slot:
        return self.target


class Signal:
    """Callbacks to call with ``emit(*args)``; ``name`` only shows up in logs and repr."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._slots: list[_Strong | weakref.WeakMethod] = []

    def connect(self, callback: Slot) -> Slot:
        """Call ``callback(*args)`` on every emit. Returns it, so it works as a decorator."""
        if not callable(callback):
            raise TypeError(f"{callback!r} is not callable")
        if self._find(callback) is None:
            ref = weakref.WeakMethod(callback) if inspect.ismethod(callback) else _Strong(callback)
            self._slots.append(ref)
        return callback

    def disconnect(self, callback: Slot) -> None:
        """Stop calling ``callback``; raises ValueError if it is not connected."""
        index = self._find(callback)
        if index is None:
            raise ValueError(f"{callback!r} is not connected to {self!r}")
        del self._slots[index]

    def disconnect_all(self) -> None:
        self._slots.clear()

    def emit(self, *args: Any) -> None:
        """Call every connected slot with ``args``, in connection order."""
        for ref in tuple(self._slots):
            if not any(r is ref for r in self._slots):  # disconnected by an earlier slot
                continue
            slot = ref()
            if slot is None:  # the object of a bound method was collected
                self._slots = [r for r in self._slots if r is not ref]
                continue
            try:
                slot(*args)
            except Exception:
                log.exception("slot %r of signal %r raised", slot, self.name)

    def __len__(self) -> int:
        """Number of live connected slots."""
        return sum(1 for ref in self._slots if ref() is not None)

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, {len(self)} slots)"

    def _find(self, callback: Slot) -> int | None:
        for index, ref in enumerate(self._slots):
            target = ref()
            if target is not None and target == callback:
                return index
        return None
