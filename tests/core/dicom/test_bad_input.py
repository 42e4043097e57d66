"""A folder of bad and odd input: nothing raises, every file is accounted for, nothing is written.

The folder mixes a truncated DICOM, DICM-prefixed garbage, an empty file, text, a PNG, a real
DICOMDIR tree (pydicom's dicomdirtests, copied whole), a symlink loop, a dangling symlink, a
named pipe (opening it would block) and, when not running as root, a file without read
permission.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.core.study_index import build_index, check_series, load_series

SERIES_KEYS = {
    "uid", "patient", "study", "modality", "description", "files", "shape", "spacing",
    "status", "warnings",
}  # fmt: skip
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _png(width: int = 5, height: int = 3) -> bytes:
    """A valid 8-bit greyscale PNG (filter byte 0 per row)."""
    rows = b"".join(
        b"\0" + bytes((x * 40 + y * 7) % 256 for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _truncated_copy(testdata, dest: Path) -> Path:
    """MR_small.dcm cut in the middle of its pixel data."""
    src = testdata("MR_small.dcm")
    data = src.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixel_data = pydicom.dcmread(src).PixelData
    start = data.find(pixel_data)  # (the file has a TIFF preamble and bytes after the pixels)
    assert start > 132
    cut = start + len(pixel_data) // 2
    dest.write_bytes(data[:cut])
    return dest


def _corrupt(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return b"\0" * 128 + b"DICM" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()


@pytest.fixture
def bad_folder(tmp_path, testdata):
    root = tmp_path / "input"
    root.mkdir()
    _truncated_copy(testdata, root / "truncated.dcm")
    for seed in range(3):
        (root / f"corrupt_{seed}.dcm").write_bytes(_corrupt(seed))
    (root / "empty.dcm").write_bytes(b"")
    (root / "notes.txt").write_text("not an image\n")
    (root / "picture.png").write_bytes(_png())
    shutil.copytree(testdata("DICOMDIR").parent, root / "dicomdirtests")
    os.symlink(root, root / "loop", target_is_directory=True)
    os.symlink(root / "gone.dcm", root / "dangling.dcm")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.dcm")  # opening it for reading would block forever
    if not IS_ROOT:
        locked = root / "locked.dcm"
        shutil.copy(testdata("CT_small.dcm"), locked)
        locked.chmod(0)
    return root


def _file_entries(root: Path) -> list[str]:
    """Every non-directory entry under root, not following links (the loop adds nothing)."""
    return sorted(
        str((Path(dirpath) / name).absolute())
        for dirpath, _dirnames, filenames in os.walk(root)
        for name in filenames
    )


def _snapshot(root: Path) -> dict:
    """Names, sizes, mtimes and sha256 of everything under root (links not followed)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = None
            if stat.S_ISREG(st.st_mode) and os.access(path, os.R_OK):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            snap[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return snap


def _radview(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "viewer", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].strip()
    return lines[0]


def _index(folder: Path, timeout: float = 60.0):
    """build_index in a daemon thread: a scan that blocks (on the pipe) fails, never hangs."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(build_index(folder)), daemon=True)
    worker.start()
    worker.join(timeout)
    assert result, f"build_index({folder}) did not return within {timeout} s"
    return result[0]


# -- the index -------------------------------------------------------------------------------
def test_every_file_is_a_series_member_or_skipped_once(bad_folder):
    index = _index(bad_folder)
    listed = [f for s in index.series for f in s.files] + [s.path for s in index.skipped]
    assert sorted(listed) == _file_entries(bad_folder)  # each exactly once
    assert not any("/loop/" in p for p in listed)
    for sk in index.skipped:
        assert sk.reason.strip() and "\n" not in sk.reason, sk
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert reasons["empty.dcm"] == "not a DICOM file"
    assert reasons["notes.txt"] == "not a DICOM file"
    assert "DICOMDIR" in reasons["DICOMDIR"]
    for seed in range(3):
        assert f"corrupt_{seed}.dcm" in reasons
    if hasattr(os, "mkfifo"):
        assert reasons["pipe.dcm"].startswith("not a regular file")
    assert reasons["dangling.dcm"].startswith("not a regular file")
    if not IS_ROOT:
        assert reasons["locked.dcm"].startswith("unreadable")


def test_dicomdir_tree_images_are_found(bad_folder):
    """All 31 images the DICOMDIR references are in series (they are scanned directly)."""
    dicomdir = bad_folder / "dicomdirtests" / "DICOMDIR"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(dicomdir)
    referenced = {
        str(dicomdir.parent.joinpath(*r.ReferencedFileID).absolute())
        for r in ds.DirectoryRecordSequence
        if "ReferencedFileID" in r
    }
    assert len(referenced) == 31
    members = {f for s in _index(bad_folder).series for f in s.files}
    assert referenced <= members
    # the DICOMDIR path itself opens its folder
    via_dicomdir = _index(dicomdir)
    assert {f for s in via_dicomdir.series for f in s.files} >= referenced


def test_png_is_a_series(bad_folder):
    index = _index(bad_folder)
    (png,) = [s for s in index.series if s.files[0].endswith("picture.png")]
    assert png.modality == "OT"
    volume = load_series(png)
    assert volume.array.shape == (1, 3, 5)
    assert volume.array[0, 1, 2] == (2 * 40 + 1 * 7) % 256


def test_truncated_series_gets_an_error_status(bad_folder):
    index = _index(bad_folder)
    (entry,) = [s for s in index.series if s.files[0].endswith("truncated.dcm")]
    assert entry.status == "ok"  # the header is intact; only decoding can tell
    check_series(entry)
    assert entry.status.startswith("error: ")
    assert "\n" not in entry.status
    assert "truncated" in entry.status
    for other in index.series:  # checking everything else raises nothing either
        check_series(other)
        assert other.status == "ok" or other.status.startswith("error: ")


@pytest.mark.skipif(IS_ROOT, reason="root reads files without read permission")
def test_unreadable_file_is_skipped(tmp_path, testdata):
    folder = tmp_path / "locked"
    folder.mkdir()
    shutil.copy(testdata("CT_small.dcm"), folder / "a.dcm")
    (folder / "a.dcm").chmod(0)
    index = build_index(folder)
    assert index.series == []
    assert index.skipped[0].reason.startswith("unreadable")


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_info_json_check(bad_folder, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(bad_folder)
    proc = _radview("info", bad_folder, "--json", "--check", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"series", "skipped"}
    files = []
    for series in out["series"]:
        assert set(series) == SERIES_KEYS
        assert series["files"] and all(os.path.isabs(f) for f in series["files"])
        assert series["status"] == "ok" or series["status"].startswith("error: ")
        files += series["files"]
    for skipped in out["skipped"]:
        assert set(skipped) == {"path", "reason"} and skipped["reason"].strip()
        files.append(skipped["path"])
    assert sorted(files) == _file_entries(bad_folder)
    (truncated,) = [s for s in out["series"] if s["files"][0].endswith("truncated.dcm")]
    assert truncated["status"].startswith("error: ")
    assert truncated["shape"] == [1, 64, 64]
    assert _snapshot(bad_folder) == before
    assert list(work.iterdir()) == []


def test_scan_and_check_leave_the_folder_unchanged(bad_folder):
    before = _snapshot(bad_folder)
    index = _index(bad_folder)
    for entry in index.series:
        check_series(entry)
    assert _snapshot(bad_folder) == before


def test_cli_info_missing_path(tmp_path):
    proc = _radview("info", tmp_path / "nonexistent", cwd=tmp_path)
    line = _one_error_line(proc)
    assert "nonexistent" in line
    assert proc.stdout == ""


def test_cli_convert_rejects_unknown_output_type(bad_folder, tmp_path):
    out = tmp_path / "out.txt"
    proc = _radview("convert", bad_folder, out, cwd=tmp_path)
    _one_error_line(proc)
    assert not out.exists()


def test_cli_convert_truncated_only_folder(tmp_path, testdata):
    folder = tmp_path / "only"
    folder.mkdir()
    _truncated_copy(testdata, folder / "truncated.dcm")
    outdir = tmp_path / "out"
    outdir.mkdir()
    for name in ("vol.nii", "vol.nii.gz", "vol.nrrd"):
        proc = _radview("convert", folder, outdir / name, cwd=tmp_path)
        _one_error_line(proc)
        assert list(outdir.iterdir()) == []  # no output, no temporary left behind
