"""Autosave in the viewer (viewer.qt.autosave): a real viewer process killed with SIGKILL in
the middle of a session loses no finished stroke; the recovery prompt (Recover / Discard /
Later); the journal's folder; exports let the journal go."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from tests.qt.segment_helpers import ORIGIN, SPACING, start_painting, stroke
from viewer.core.demo import write_series
from viewer.core.journal import find_journals, read_info, recover
from viewer.qt.autosave import ENV_AUTOSAVE, autosave_folder

CHILD = Path(__file__).with_name("autosave_child.py")
HOLD_AT = 8  # every op of the child's script, then a stroke in progress


def _read_lines(proc, until: str, timeout: float, errors: Path) -> list[str]:
    """The child's stdout lines up to ``until`` (never blocks past ``timeout`` seconds)."""
    fd, buf, lines = proc.stdout.fileno(), b"", []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        *done, buf = (buf + chunk).split(b"\n")
        lines += [line.decode().strip() for line in done]
        if until in lines:
            return lines
    tail = errors.read_text(errors="replace")[-2000:]
    raise AssertionError(f"child stopped or timed out before {until!r}: {lines}\n{tail}")


def _run_child(tmp_path, out: Path, hold_at: int, until: str) -> list[str]:
    """Run autosave_child.py on tmp_path/ct until it prints ``until``, SIGKILL it, and
    return every line it printed (those still in the pipe included)."""
    err = open(tmp_path / "child.err", "w")  # noqa: SIM115 - closed below (a pipe could fill)
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path / "ct"), str(tmp_path / "settings.ini"),
         str(out), str(hold_at)],
        stdout=subprocess.PIPE, stderr=err, cwd=str(CHILD.parents[2]),
    )  # fmt: skip
    try:
        lines = _read_lines(proc, until, timeout=120, errors=tmp_path / "child.err")
        proc.send_signal(signal.SIGKILL)  # no clean anything
        proc.wait(10)
        lines += [line.strip() for line in proc.stdout.read().decode().splitlines()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        err.close()
    assert proc.returncode == -signal.SIGKILL
    return lines


def _table(lm) -> dict:
    return {str(v): [s.name, list(s.color)] for v, s in lm.segments.items()}


def _wait_prompt(qtbot, window):
    qtbot.waitUntil(lambda: window.segments.autosave.prompt is not None, timeout=5000)
    return window.segments.autosave.prompt


def _reopen(qtbot, window, path) -> None:
    """Open ``path`` again and wait for the new volume (the old one drops its label map)."""
    old = window.session.volume
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.volume is not old, timeout=20000)


def _click(box, text: str) -> None:
    (button,) = [b for b in box.buttons() if b.text() == text]
    button.click()
    QApplication.processEvents()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select on pipes are POSIX")
def test_a_killed_viewer_loses_no_finished_stroke(qtbot, window, load, tmp_path, phantom):
    hu, _ = phantom
    write_series(hu, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    out = tmp_path / "child"
    out.mkdir()
    lines = _run_child(tmp_path, out, hold_at=HOLD_AT, until="holding")
    assert lines[-HOLD_AT - 1 :] == [f"done {n}" for n in range(1, HOLD_AT + 1)] + ["holding"]
    (journal,) = find_journals(tmp_path / "autosave", _uid(tmp_path / "ct"))
    # 6 strokes, 1 fill click, 1 undo; the rename is a table record; the open stroke is lost
    assert read_info(journal).n_edits == 8

    load(window, tmp_path / "ct")  # the same series again: recovery is offered
    box = _wait_prompt(qtbot, window)
    assert "8 edit(s)" in box.text()
    _click(box, "Recover")
    lm = window.session.labelmap
    expected = np.load(out / f"state_{HOLD_AT}.npz")
    assert lm is not None and lm.labels.any()
    np.testing.assert_array_equal(lm.labels, expected["labels"])  # every finished stroke
    assert _table(lm) == json.loads(str(expected["table"]))  # names and colours
    assert {s.name for s in lm.segments.values()} == {"lesion A", "cyst"}
    assert not journal.exists()  # replaced by this session's journal of the recovered state
    (now,) = find_journals(tmp_path / "autosave", window.session.volume.series_uid)
    assert read_info(now).n_edits == 8
    window.segments.undo()  # the history starts at the recovered state
    np.testing.assert_array_equal(lm.labels, expected["labels"])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select on pipes are POSIX")
def test_a_kill_at_any_moment_of_painting_loses_no_finished_stroke(tmp_path, phantom):
    hu, _ = phantom
    write_series(hu, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    out = tmp_path / "child"
    out.mkdir()
    lines = _run_child(tmp_path, out, hold_at=0, until="done 6")  # killed while painting
    printed = max(int(line.split()[1]) for line in lines if line.startswith("done "))
    (journal,) = find_journals(tmp_path / "autosave", _uid(tmp_path / "ct"))
    recovered = recover(journal).labelmap
    # every stroke reported finished is there; the one being released may be there too
    states = {}
    for n in (printed, printed + 1):
        try:
            states[n] = np.load(out / f"state_{n}.npz")
            states[n]["labels"]
        except (OSError, ValueError, zipfile.BadZipFile):
            assert n == printed + 1  # killed while it saved the next state: not released
            states.pop(n, None)
    matches = [n for n, z in states.items() if np.array_equal(recovered.labels, z["labels"])]
    assert matches, f"recovered state is none of the states after strokes {sorted(states)}"
    assert _table(recovered) == json.loads(str(states[matches[0]]["table"]))
    assert printed >= 6


def _uid(folder: Path) -> str:
    import pydicom

    first = sorted(folder.iterdir())[0]
    return str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID)


def test_prompt_later_discard_and_recover_in_one_viewer(qtbot, ct, tmp_path):
    window, _, _ = ct
    folder = tmp_path / "autosave"
    uid = window.session.volume.series_uid
    assert find_journals(folder, uid) == []  # viewing writes nothing
    seg, label, axial = start_painting(window, "lesion", 6.0)
    stroke(qtbot, window, axial, (-50, -20), (40, 30))
    painted = window.session.labelmap.labels.copy()
    assert painted.any() and len(find_journals(folder, uid)) == 1
    assert window.segments.autosave.pending() == []  # our own live journal is not offered

    _reopen(qtbot, window, tmp_path / "ct")  # reopening drops the map: its journal is kept
    assert window.session.labelmap is None
    _click(_wait_prompt(qtbot, window), "Later")
    assert len(find_journals(folder, uid)) == 1

    window.segments.autosave.choose_recover()  # the menu entry asks again
    _click(_wait_prompt(qtbot, window), "Recover")
    np.testing.assert_array_equal(window.session.labelmap.labels, painted)
    assert window.session.labelmap.segments[label].name == "lesion"

    _reopen(qtbot, window, tmp_path / "ct")
    _click(_wait_prompt(qtbot, window), "Discard")
    assert find_journals(folder, uid) == [] and window.session.labelmap is None
    window.segments.autosave.choose_recover()
    assert window.segments.autosave.prompt is None


def test_an_exported_state_lets_the_journal_go(qtbot, ct, tmp_path):
    window, _, _ = ct
    folder, uid = tmp_path / "autosave", window.session.volume.series_uid
    autosave = window.segments.autosave
    seg, _, axial = start_painting(window, "lesion", 6.0)
    stroke(qtbot, window, axial, (-50, -20), (40, 30))
    token = autosave.save_point()  # an export of this state...
    stroke(qtbot, window, axial, (-20, 40), (30, -30))
    autosave.mark_saved(token)  # ...finishes after one more stroke: not everything saved
    _reopen(qtbot, window, tmp_path / "ct")
    assert len(find_journals(folder, uid)) == 1
    _click(_wait_prompt(qtbot, window), "Recover")
    stroke(qtbot, window, axial, (-40, -40), (40, 40))
    autosave.mark_saved(autosave.save_point())  # everything exported
    _reopen(qtbot, window, tmp_path / "ct")
    assert find_journals(folder, uid) == []
    QApplication.processEvents()
    assert autosave.prompt is None


def test_the_journal_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_AUTOSAVE, raising=False)
    ini = QSettings(str(tmp_path / "profile" / "radview.ini"), QSettings.IniFormat)
    assert autosave_folder(ini) == tmp_path / "profile" / "autosave"
    default = autosave_folder(QSettings("radview-test", "radview-test"))
    assert default.parts[-2:] == ("radview", "autosave") and os.path.isabs(default)
    monkeypatch.setenv(ENV_AUTOSAVE, str(tmp_path / "elsewhere"))
    assert autosave_folder(ini) == tmp_path / "elsewhere"


def test_autosave_into_a_source_folder_is_refused(
    qtbot, window, load, tmp_path, phantom, monkeypatch
):
    hu, _ = phantom
    write_series(hu, tmp_path / "ct", spacing=SPACING, origin=ORIGIN)
    monkeypatch.setenv(ENV_AUTOSAVE, str(tmp_path / "ct" / "autosave"))
    load(window, tmp_path / "ct")
    seg, _, axial = start_painting(window, "lesion", 6.0)
    stroke(qtbot, window, axial, (-50, -20), (40, 30))
    assert not (tmp_path / "ct" / "autosave").exists()
    assert "source folder" in window.last_error and window.session.labelmap.labels.any()


def test_a_nifti_export_from_the_menu_lets_the_journal_go(qtbot, ct, tmp_path):
    """The Segmentation menu's export (SegmentIO.run_export) marks its snapshot saved; a
    quantification export holds no labels and does not."""
    window, _, _ = ct
    folder, uid = tmp_path / "autosave", window.session.volume.series_uid
    seg, _, axial = start_painting(window, "lesion", 6.0)
    stroke(qtbot, window, axial, (-50, -20), (40, 30))
    recorder = window.segments.autosave.recorder
    (tmp_path / "out").mkdir()
    seg.io.run_export("quant", str(tmp_path / "out" / "q.csv"))
    qtbot.waitUntil(lambda: (tmp_path / "out" / "q.csv").exists(), timeout=20000)
    assert recorder.unsaved
    seg.io.run_export("nifti", str(tmp_path / "out" / "labels.nii.gz"))
    qtbot.waitUntil(lambda: not recorder.unsaved, timeout=20000)
    assert (tmp_path / "out" / "labels.nii.gz").exists()
    _reopen(qtbot, window, tmp_path / "ct")
    assert find_journals(folder, uid) == []
