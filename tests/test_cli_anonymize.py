"""`radview anonymize SRC OUT`: output lines, exit codes 0/1/2, --json, --key reuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.cli import main
from viewer.core.demo import write_series


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "Doe_Jane"
    who = {"patient_name": "Doe^Jane", "patient_id": "PID-1"}
    write_series(np.zeros((2, 8, 8), np.int16), folder / "ct", series_number=3, **who)
    burned = {"BurnedInAnnotation": "YES"}
    write_series(np.zeros((2, 8, 8), np.int16), folder / "sc", series_number=4, extra=burned, **who)
    (folder / "notes.txt").write_text("not DICOM")
    return folder


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_success_summary_warning_and_skipped_lines(src, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["anonymize", str(src), str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"anonymized: 4 file(s) written to {out}, 1 skipped, 0 failed, 1 warning(s)"
    ]
    err = captured.err.splitlines()
    assert err[0] == f"radview: skipped: {src / 'notes.txt'}: not a DICOM file"
    assert err[1].startswith(f"radview: warning: {out}/ANON-")
    assert err[1].endswith("004-CT-" + err[1].split("004-CT-")[1].split(":")[0] +
                           ": pixels may show burned-in text (Burned In Annotation is YES) "
                           "(2 file(s))")  # fmt: skip
    written = _files(out)
    assert len(written) == 4
    ds = pydicom.dcmread(written[0])
    assert ds.PatientID.startswith("ANON-") and ds.PatientIdentityRemoved == "YES"
    assert {pydicom.dcmread(f).PatientID for f in written} == {ds.PatientID}


def test_failed_file_exit_1_and_others_written(src, tmp_path, capsys):
    broken = src / "ct" / "broken.dcm"
    broken.write_bytes((src / "ct" / "IM00001.dcm").read_bytes()[:300])
    out = tmp_path / "out"
    assert main(["anonymize", str(src), str(out)]) == 1
    captured = capsys.readouterr()
    assert f"radview: failed: {broken}: " in captured.err
    assert "4 file(s) written" in captured.out and "1 failed" in captured.out
    assert len(_files(out)) == 4


def test_json_report(src, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["anonymize", str(src), str(out), "--json", "--keep-dates"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["written"]) == 4 and doc["failed"] == []
    assert doc["skipped"] == [{"path": str(src / "notes.txt"), "reason": "not a DICOM file"}]
    assert doc["warnings"][0]["files"] == 2
    ds = pydicom.dcmread(doc["written"][0]["output"])
    assert "113106" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("inside", "OUT must not be inside the source folder"),
        ("full", "OUT must be a new or empty folder"),
        ("missing-src", "no such file or folder"),
    ],
)
def test_usage_errors_exit_2_one_line_nothing_written(src, tmp_path, capsys, where, message):
    before = _files(src)
    out = {"inside": src / "anon", "full": tmp_path / "full", "missing-src": tmp_path / "o"}[where]
    if where == "full":
        out.mkdir()
        (out / "x").write_text("x")
    source = tmp_path / "nope" if where == "missing-src" else src
    assert main(["anonymize", str(source), str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("radview: error: ") and message in err[0]
    assert _files(src) == before and not (src / "anon").exists()


def test_no_dicom_exit_1(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    assert main(["anonymize", str(tmp_path / "in"), str(tmp_path / "out")]) == 1
    assert f"radview: error: no DICOM file in {tmp_path / 'in'}" in capsys.readouterr().err


def test_key_file_reused_gives_the_same_uids(src, tmp_path, capsys):
    key = tmp_path / "key.json"
    assert main(["anonymize", str(src), str(tmp_path / "o1"), "--key", str(key)]) == 0
    assert key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert main(["anonymize", str(src), str(tmp_path / "o2"), "--key", str(key)]) == 0
    assert main(["anonymize", str(src), str(tmp_path / "o3")]) == 0
    uids = [
        {pydicom.dcmread(f).SOPInstanceUID for f in _files(tmp_path / o)}
        for o in ("o1", "o2", "o3")
    ]
    assert uids[0] == uids[1] and not uids[0] & uids[2]
    capsys.readouterr()
    inside = str(tmp_path / "o4" / "k")
    assert main(["anonymize", str(src), str(tmp_path / "o4"), "--key", inside]) == 2
    assert "--key must not be inside OUT" in capsys.readouterr().err


def test_real_process_exit_code_and_no_traceback(src, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "viewer", "anonymize", str(src), str(src / "x")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("radview: error: OUT must not be inside the source folder")


def test_screenshot_anonymize_hides_the_identifying_corner_text(tmp_path, capsys):
    """Dark image: bright pixels in the top-left corner can only be the patient text."""
    write_series(np.full((3, 48, 48), -1000, np.int16), tmp_path / "ct", patient_name="Doe^Jane",
                 patient_id="PID-77", extra={"StudyDate": "20240311"})  # fmt: skip
    from PIL import Image

    corners = {}
    for flag in ([], ["--anonymize"]):
        out = tmp_path / f"shot{len(flag)}.png"
        args = ["screenshot", str(tmp_path / "ct"), "--out", str(out), "--layout", "single"]
        assert main(args + flag) == 0
        rgb = np.asarray(Image.open(out).convert("RGB"))
        corners[bool(flag)] = int((rgb[:70, :150].min(axis=2) > 200).sum())
    capsys.readouterr()
    assert corners[False] > 50 and corners[True] == 0, corners
