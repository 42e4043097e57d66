"""Run slow plain-Python work off the GUI thread and hear back through Qt signals.

The work is a plain function ``fn(progress, cancelled)`` that knows nothing of Qt:
``progress(done, total)`` reports how far it got and ``cancelled()`` says whether the user
gave up (the same callbacks :func:`viewer.core.study_index.build_index` and ``load_series``
take). A :class:`Task` runs it on a ``QThreadPool`` and delivers ``progress``, ``finished``,
``failed`` or ``cancelled`` on the GUI thread. A :class:`TaskRunner` owns the pool and keeps
running tasks alive; call ``cancel_all()`` then ``wait_all(ms)`` when the window closes.

Example::

    runner = TaskRunner(self)
    runner.run(
        lambda progress, cancelled: build_index(path, progress, cancelled),
        on_finished=self.browser.set_index,
        on_failed=self.statusBar().showMessage,
        on_progress=lambda done, total: bar.setRange(0, total) or bar.setValue(done),
    )
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

Work = Callable[[Callable[[int, int], None], Callable[[], bool]], Any]

#: Least time between two progress signals, in seconds (at most ~30 per second).
PROGRESS_INTERVAL_S = 1 / 30

# Errors whose message alone does not say what went wrong ("'x'" for a KeyError).
_PROGRAMMING_ERRORS = (
    KeyError, IndexError, TypeError, AttributeError, NameError, AssertionError, ZeroDivisionError,
)


def one_line_message(exc: BaseException) -> str:
    """A one-line, user-readable description of ``exc`` (no traceback)."""
    if isinstance(exc, MemoryError):
        return "not enough memory"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not text or isinstance(exc, _PROGRAMMING_ERRORS):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:300]


class _Runnable(QRunnable):
    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body

    def run(self) -> None:
        self._body()


class Task(QObject):
    """One run of ``fn(progress, cancelled)`` on a worker thread.

    Signals (always delivered on the thread that created the Task, the GUI thread):

    * ``progress(done, total)``: throttled to one per ``PROGRESS_INTERVAL_S``; the first
      report and the last (``done == total``) always get through.
    * ``finished(result)``: ``fn`` returned ``result`` and nobody cancelled.
    * ``failed(message)``: ``fn`` raised; ``message`` is one line (the traceback is logged).
    * ``cancelled()``: ``cancel()`` was called; emitted once ``fn`` has returned or raised.

    Exactly one of ``finished``, ``failed`` or ``cancelled`` is emitted, then ``done()``.
    A Task started by hand (not through :class:`TaskRunner`) must be kept referenced by
    its caller until ``done``.
    """

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    #: emitted after the final signal, whatever it was
    done = Signal()

    # emitted from the worker thread, received (queued) on the Task's own thread
    _progress_from_worker = Signal(int, int)
    _result_from_worker = Signal(str, object)

    def __init__(self, fn: Work, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cancel = threading.Event()
        self._running = False
        self._finished = False
        self._last_progress = 0.0
        self._progress_from_worker.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._result_from_worker.connect(self._on_result, Qt.ConnectionType.QueuedConnection)

    # -- public API ---------------------------------------------------------------------
    def start(self, pool: QThreadPool | None = None) -> Task:
        """Queue the work on ``pool`` (the global pool by default); returns self."""
        if self._running or self._finished:
            raise RuntimeError("a Task runs once")
        self._running = True
        # the pool owns and deletes the runnable; it holds this Task until it has run
        (pool or QThreadPool.globalInstance()).start(_Runnable(self._work))
        return self

    def cancel(self) -> None:
        """Ask the work to stop; ``cancelled()`` follows once ``fn`` returns."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_running(self) -> bool:
        """Started and no final signal emitted yet."""
        return self._running and not self._finished

    # -- worker thread ------------------------------------------------------------------
    def _report(self, done: int, total: int) -> None:
        now = time.monotonic()
        first = self._last_progress == 0.0
        if first or done >= total or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self._progress_from_worker.emit(int(done), int(total))

    def _work(self) -> None:
        try:
            result = self._fn(self._report, self._cancel.is_set)
        except BaseException as exc:  # noqa: BLE001 - reported as one line, never re-raised
            if self._cancel.is_set():
                self._result_from_worker.emit("cancelled", None)
            else:
                log.warning("task failed: %s", one_line_message(exc),
                            exc_info=log.isEnabledFor(logging.DEBUG))
                self._result_from_worker.emit("failed", one_line_message(exc))
            return
        kind = "cancelled" if self._cancel.is_set() else "finished"
        self._result_from_worker.emit(kind, result)

    # -- GUI thread ---------------------------------------------------------------------
    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self._finished:
            self.progress.emit(done, total)

    @Slot(str, object)
    def _on_result(self, kind: str, payload: object) -> None:
        self._finished = True
        if kind == "finished":
            self.finished.emit(payload)
        elif kind == "failed":
            self.failed.emit(str(payload))
        else:
            self.cancelled.emit()
        self.done.emit()


class TaskRunner(QObject):
    """Runs :class:`Task` s on its own thread pool and keeps them alive until they end.

    ``max_threads`` bounds how many run at once; more are queued. At shutdown call
    ``cancel_all()`` and then ``wait_all(ms)`` so no worker outlives the window.
    """

    def __init__(self, parent: QObject | None = None, max_threads: int | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        if max_threads is not None:
            self._pool.setMaxThreadCount(max(1, max_threads))
        self._tasks: set[Task] = set()

    def run(
        self,
        fn: Work,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> Task:
        """Start ``fn(progress, cancelled)``; callbacks run on the GUI thread. Returns the Task."""
        task = Task(fn, parent=self)  # owned by Qt: freed by deleteLater on the GUI thread
        if on_finished is not None:
            task.finished.connect(on_finished)
        if on_failed is not None:
            task.failed.connect(on_failed)
        if on_progress is not None:
            task.progress.connect(on_progress)
        if on_cancelled is not None:
            task.cancelled.connect(on_cancelled)
        task.done.connect(partial(self._forget, task))
        self._tasks.add(task)
        return task.start(self._pool)

    def _forget(self, task: Task) -> None:
        self._tasks.discard(task)
        task.deleteLater()  # on a later loop turn, never from a worker thread

    @property
    def tasks(self) -> list[Task]:
        """Tasks started and not yet forgotten."""
        return list(self._tasks)

    def active_count(self) -> int:
        return sum(1 for t in self._tasks if t.is_running)

    def cancel_all(self) -> None:
        """Ask every running or queued task to stop (they still emit ``cancelled``)."""
        for task in list(self._tasks):
            task.cancel()

    def wait_all(self, ms: int = -1) -> bool:
        """Block until every worker has returned (``ms`` < 0: no limit). True if all did.

        Final signals are queued to the GUI thread and arrive on the next event-loop turn.
        """
        return self._pool.waitForDone(ms)
