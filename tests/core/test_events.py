"""Signal: connect/emit/disconnect, re-entrancy, failing slots, weak bound methods."""

from __future__ import annotations

import gc
import logging

import pytest

from viewer.core.events import Signal


def test_emit_calls_slots_in_order_with_args():
    sig = Signal("s")
    calls = []
    sig.connect(lambda *a: calls.append(("first", a)))
    sig.connect(lambda *a: calls.append(("second", a)))
    sig.emit(1, "x")
    assert calls == [("first", (1, "x")), ("second", (1, "x"))]


def test_connect_is_idempotent_and_works_as_decorator():
    sig = Signal()
    calls = []

    @sig.connect
    def slot(value):
        calls.append(value)

    sig.connect(slot)
    sig.emit(3)
    assert calls == [3]
    assert len(sig) == 1


def test_disconnect():
    sig = Signal()
    calls = []
    slot = calls.append
    sig.connect(slot)
    sig.disconnect(slot)
    sig.emit(1)
    assert calls == []
    with pytest.raises(ValueError):
        sig.disconnect(slot)


def test_slot_disconnecting_itself_and_a_later_slot_during_emit():
    sig = Signal()
    calls = []

    def once(v):
        calls.append(("once", v))
        sig.disconnect(once)
        sig.disconnect(later)

    def later(v):
        calls.append(("later", v))

    def last(v):
        calls.append(("last", v))

    for slot in (once, later, last):
        sig.connect(slot)
    sig.emit(1)
    sig.emit(2)
    assert calls == [("once", 1), ("last", 1), ("last", 2)]


def test_slot_connected_during_emit_runs_from_next_emit():
    sig = Signal()
    calls = []

    def adder(v):
        calls.append(("adder", v))
        sig.connect(new)

    def new(v):
        calls.append(("new", v))

    sig.connect(adder)
    sig.emit(1)
    sig.emit(2)
    assert calls == [("adder", 1), ("adder", 2), ("new", 2)]


def test_exception_in_a_slot_is_logged_and_others_still_run(caplog):
    sig = Signal("boom")
    calls = []

    def bad(_):
        raise RuntimeError("broken view")

    sig.connect(bad)
    sig.connect(calls.append)
    with caplog.at_level(logging.ERROR, logger="viewer.core.events"):
        sig.emit(7)
    assert calls == [7]
    assert "broken view" in caplog.text


def test_bound_methods_are_held_weakly():
    sig = Signal()
    calls = []

    class View:
        def on_change(self, v):
            calls.append(v)

    view = View()
    sig.connect(view.on_change)
    sig.emit(1)
    del view
    gc.collect()
    sig.emit(2)
    assert calls == [1]
    assert len(sig) == 0


def test_bound_method_disconnect_by_equal_method():
    sig = Signal()
    calls = []

    class View:
        def on_change(self, v):
            calls.append(v)

    view = View()
    sig.connect(view.on_change)
    sig.disconnect(view.on_change)
    sig.emit(1)
    assert calls == []
