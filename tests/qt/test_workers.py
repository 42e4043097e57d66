"""Task and TaskRunner: plain functions run off the GUI thread, results come back as signals."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QElapsedTimer, QTimer

from viewer.qt.workers import Task, TaskRunner, one_line_message


@pytest.fixture
def runner(qtbot):
    r = TaskRunner(max_threads=2)
    yield r
    r.cancel_all()
    assert r.wait_all(5000)
    qtbot.wait(20)  # let the queued final signals arrive
    r.deleteLater()


def test_result_is_delivered_on_the_gui_thread(qtbot, runner):
    seen = {}

    def work(progress, cancelled):
        seen["worker"] = threading.current_thread()
        return 41 + 1

    def on_finished(result):
        seen["result"] = result
        seen["slot"] = threading.current_thread()

    task = runner.run(work, on_finished=on_finished)
    with qtbot.waitSignal(task.done, timeout=5000):
        pass
    assert seen["result"] == 42
    assert seen["slot"] is threading.main_thread()
    assert seen["worker"] is not threading.main_thread()


def test_progress_arrives_throttled_and_ends_at_total(qtbot, runner):
    reports = []

    def work(progress, cancelled):
        for i in range(1, 10001):
            progress(i, 10000)
        return "ok"

    task = runner.run(work, on_progress=lambda d, t: reports.append((d, t)))
    with qtbot.waitSignal(task.finished, timeout=5000) as blocker:
        pass
    qtbot.wait(10)
    assert blocker.args == ["ok"]
    assert reports, "no progress arrived"
    assert reports[-1] == (10000, 10000)
    assert len(reports) < 100, f"{len(reports)} progress signals for a fast loop: not throttled"


def test_cancel_stops_a_long_function_early(qtbot, runner):
    steps = []
    finished = []

    def work(progress, cancelled):
        for i in range(1000):
            if cancelled():
                return None
            steps.append(i)
            time.sleep(0.01)  # 10 s if never cancelled
        return "completed"

    task = runner.run(work, on_finished=finished.append)
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=5000)
    started = time.monotonic()
    with qtbot.waitSignal(task.cancelled, timeout=3000):
        task.cancel()
    assert time.monotonic() - started < 1.0
    assert task.is_cancelled()
    assert len(steps) < 1000
    assert finished == []


def test_exception_becomes_one_line_failure(qtbot, runner):
    finished = []

    def work(progress, cancelled):
        raise ValueError("bad pixel data in IM0001\nsecond line of detail")

    task = runner.run(work, on_finished=finished.append)
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        pass
    (message,) = blocker.args
    assert message == "bad pixel data in IM0001"
    assert "\n" not in message and "Traceback" not in message
    assert finished == []


def test_one_line_message_names_programming_errors():
    assert one_line_message(KeyError("PixelData")) == "KeyError: 'PixelData'"
    assert one_line_message(RuntimeError()) == "RuntimeError"
    assert one_line_message(MemoryError()) == "not enough memory"


def test_gui_stays_responsive_while_a_worker_computes(qtbot, runner):
    gaps = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)

    def work(progress, cancelled):
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 1.0:  # pure-Python CPU work, holds the GIL in bursts
            sum(i * i for i in range(2000))
            n += 1
            progress(n, n + 1)
        return n

    timer.start()
    last[0] = clock.elapsed()
    task = runner.run(work)
    with qtbot.waitSignal(task.finished, timeout=5000):
        pass
    timer.stop()
    assert len(gaps) > 30
    assert max(gaps) < 100, f"GUI loop stalled {max(gaps)} ms"


def test_runner_cancel_all_and_wait_all(qtbot):
    runner = TaskRunner(max_threads=2)
    cancelled = []

    def work(progress, is_cancelled):
        while not is_cancelled():
            time.sleep(0.005)

    for _ in range(3):  # the third one waits in the queue
        runner.run(work, on_cancelled=lambda: cancelled.append(1))
    qtbot.waitUntil(lambda: runner.active_count() == 3, timeout=1000)
    runner.cancel_all()
    assert runner.wait_all(3000)
    qtbot.waitUntil(lambda: len(cancelled) == 3, timeout=3000)
    qtbot.waitUntil(lambda: runner.tasks == [], timeout=3000)
    runner.deleteLater()


def test_a_task_runs_once(qtbot):
    task = Task(lambda progress, cancelled: 1)
    with qtbot.waitSignal(task.finished, timeout=5000):
        task.start()
    with pytest.raises(RuntimeError):
        task.start()
