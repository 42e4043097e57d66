"""Large and hostile input: many files, link loops, headers claiming huge sizes, zip bombs.

Nothing here writes a large file: the hostile files only *claim* huge sizes (or inflate to
them). Decoding that could allocate gigabytes if a check regressed runs in a forked child
with an address-space limit, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.fuzz import seeds
from tests.fuzz.isolate import run_isolated
from viewer.core.dicom import headers, limits, pixels
from viewer.core.dicom.limits import LimitError
from viewer.core.dicom.loaders import LoadCancelled, load_stack
from viewer.core.dicom.pixels import decode_plane
from viewer.core.dicom.scan import read_file_header, scan
from viewer.core.dicom.series import plan_stacks
from viewer.core.study_index import build_index, check_series, load_series

MANY = 3000


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    seeds.write_many(folder, MANY)
    return folder


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _within(seconds: float, fn, *args):
    """fn(*args) in a daemon thread; fails (never hangs) when it takes longer."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"{getattr(fn, '__name__', fn)} did not return within {seconds} s"
    return out[0]


def _bounded_child(fn, *args):
    kind, message = run_isolated(fn, *args, timeout=60)
    assert kind not in ("died", "timeout"), f"decoding {kind}: {message}"
    return kind, message


# -- tens of thousands of files (a few thousand here; benchmarks/scan_many.py: 25 000) --------
def test_many_files_scan_keeps_only_small_records(many):
    calls: list[tuple[int, int]] = []
    result = scan(many, progress=lambda done, total: calls.append((done, total)))
    assert len(result.slices) == MANY and not result.skipped and not result.cancelled
    assert calls[-1] == (MANY, MANY) and len(calls) == MANY
    assert all(b[0] == a[0] + 1 for a, b in zip(calls, calls[1:]))
    gc.collect()
    datasets = [o for o in gc.get_objects() if isinstance(o, pydicom.Dataset)]
    assert len(datasets) < 10  # no per-file dataset kept (a few may live in pydicom caches)
    stacks, _ = plan_stacks(result.slices)
    assert [st.shape for st in stacks] == [(MANY, 8, 8)]


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_stops_a_large_scan_promptly(many, workers):
    cancel_at = 300
    state = {"done": 0, "set": None}

    def progress(done, total):
        state["done"] = done
        if done == cancel_at and state["set"] is None:
            state["set"] = time.monotonic()

    result = _within(30, scan, many, progress, lambda: state["set"] is not None, workers)
    latency = time.monotonic() - state["set"]
    assert result.cancelled
    assert cancel_at <= len(result.slices) <= cancel_at + 1
    assert latency < 0.5, f"cancel took {latency:.2f} s"
    assert mp.active_children() == []  # the worker pool is gone, not left running


def test_cancel_while_walking(many):
    polls = []

    def cancelled():
        polls.append(1)
        return True

    start = time.monotonic()
    result = scan(many, cancelled=cancelled)
    assert result.cancelled and not result.slices
    assert len(polls) == 1 and time.monotonic() - start < 0.5


# -- link loops and odd entries ---------------------------------------------------------------
def test_symlink_loops_end_and_every_file_is_seen_once(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "deeper").mkdir(parents=True)
    seeds.write_many(root / "a", 3)
    seeds.write_many(root / "a" / "deeper", 2)
    os.symlink(root, root / "a" / "deeper" / "up", target_is_directory=True)  # to an ancestor
    os.symlink(root / "a", root / "alias", target_is_directory=True)  # the same folder again
    os.symlink(root / "self", root / "self")  # a link to itself
    os.symlink(root / "missing", root / "dangling")
    result = _within(20, scan, root)
    seen = [s.file.path for s in result.slices] + [s.path for s in result.skipped]
    assert len(seen) == len(set(seen)) == 7
    names = sorted(Path(p).name for p in seen)
    assert names.count("im000000.dcm") == 2 and names.count("im000001.dcm") == 2
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {
        "self": "not a regular file (broken symbolic link)",
        "dangling": "not a regular file (broken symbolic link)",
    }


def test_odd_entries_get_one_reason_each(tmp_path, testdata):
    folder = tmp_path / "odd"
    (folder / "folder.dcm").mkdir(parents=True)  # a directory named like a file: walked
    _write(folder / "folder.dcm", "inside.dcm", seeds.file_bytes(seeds.ct_dataset()))
    _write(folder, "empty.dcm", b"")
    _write(folder, "junk.dcm", os.urandom(3000))
    _write(folder, "dicm_junk.dcm", b"\0" * 128 + b"DICM" + b"\xff" * 500)
    cut = testdata("CT_small.dcm").read_bytes()[:1000]
    _write(folder, "cut_in_header.dcm", cut)
    result = scan(folder)
    assert [Path(s.file.path).name for s in result.slices] == ["inside.dcm"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(reasons) == {"empty.dcm", "junk.dcm", "dicm_junk.dcm", "cut_in_header.dcm"}
    for reason in reasons.values():
        assert reason.strip() and reason.isprintable() and len(reason) <= 200


def test_unreadable_folder_is_reported_and_the_scan_goes_on(tmp_path, monkeypatch):
    seeds.write_many(tmp_path / "ok", 2)
    seeds.write_many(tmp_path / "locked", 2)
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":  # what a folder without read permission does
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan(tmp_path)
    assert len(result.slices) == 2
    (skipped,) = result.skipped
    assert skipped.path.endswith("locked")
    assert skipped.reason == "unreadable folder: Permission denied"


# -- headers claiming huge sizes --------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "columns", "frames", "expected"),
    [
        (10**9, 512, 1, "claims 1000000000×512 pixels"),
        (512, 70000, 1, "limit of 65535 pixels a side"),
        (8, 8, 10**9, "claims 1000000000 frames"),
        (60000, 60000, 5000, "larger than radview's limit of 16.0 GB a file"),
        (0, 8, 1, "invalid image size 0×8"),
        (8, 8, -3, "invalid NumberOfFrames -3"),
    ],
)
def test_claimed_sizes_are_refused_at_scan(tmp_path, rows, columns, frames, expected):
    path = _write(tmp_path, "claims.dcm", seeds.claims_rows(rows, columns, frames))
    start = time.monotonic()
    slices, reason = read_file_header(path)
    assert slices == [] and expected in reason, reason
    assert time.monotonic() - start < 0.5


def test_series_claiming_more_voxels_than_the_limit_is_an_error_series(tmp_path):
    for k in range(2):  # 2 × 65535² 16-bit planes: each file plausible, the series not
        _write(tmp_path, f"{k}.dcm", seeds.compressed_claim(65535, 65535, k, str(k)))
    (entry,) = build_index(tmp_path).series
    assert entry.status == (
        "error: claims 65535×65535×2 voxels (8.59e+09, at least 8.0 GB); "
        "larger than radview's limit of 4.29e+09 voxels a series"
    )
    with pytest.raises(ValueError, match="larger than radview's limit"):
        load_series(entry)


def test_unsupported_bits_and_samples(tmp_path):
    twelve = seeds.ct_dataset()
    twelve.BitsAllocated = 12
    two = seeds.ct_dataset()
    two.SamplesPerPixel = 2
    for name, ds, expected in (
        ("bits.dcm", twelve, "unsupported BitsAllocated 12"),
        ("samples.dcm", two, "unsupported SamplesPerPixel 2"),
    ):
        slices, reason = read_file_header(_write(tmp_path, name, seeds.file_bytes(ds)))
        assert slices == [] and reason == expected


def test_native_pixel_data_shorter_than_the_header_says(tmp_path):
    ds = seeds.ct_dataset(8, 8, frames=3)
    ds.PixelData = ds.PixelData[: 8 * 8 * 2]  # one frame of three
    slices, reason = read_file_header(_write(tmp_path, "short.dcm", seeds.file_bytes(ds)))
    assert slices == []
    assert reason.startswith("pixel data too short: ") and "need 384 bytes" in reason


# -- memory: a series larger than this machine can hold --------------------------------------
@pytest.fixture
def small_series(tmp_path):
    for k in range(4):
        ds = seeds.ct_dataset(16, 16, uid_suffix=str(k))
        ds.ImagePositionPatient = [0, 0, k]
        _write(tmp_path / "series", f"{k}.dcm", seeds.file_bytes(ds))
    (entry,) = build_index(tmp_path / "series").series
    return entry


def test_series_larger_than_free_memory_is_refused_before_allocating(small_series, monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 100 * 1024**2)
    monkeypatch.setattr(limits, "RESERVE_BYTES", 0)
    monkeypatch.setattr(limits, "total_memory", lambda: 8 * 1024**3)
    assert load_series(small_series).array.shape == (4, 16, 16)  # 2 KB fits
    monkeypatch.setattr(limits, "available_memory", lambda: 1024)
    with pytest.raises(LimitError, match=r"needs 2\.0 KB of memory and only 1\.0 KB is free"):
        load_series(small_series)
    monkeypatch.setattr(limits, "total_memory", lambda: 1024)
    with pytest.raises(LimitError, match=r"too big for this machine \(1\.0 KB in all\)"):
        load_series(small_series)


def test_memory_figures_are_read():
    total, free = limits.total_memory(), limits.available_memory()
    assert total is not None and free is not None and 0 < free <= total


def test_loading_can_be_cancelled(small_series):
    planes = []
    with pytest.raises(LoadCancelled):
        load_stack(small_series.stack, progress=lambda d, t: planes.append(d),
                   cancelled=lambda: len(planes) >= 2, workers=1)  # fmt: skip
    assert planes == [1, 2]


# -- zip bombs --------------------------------------------------------------------------------
def test_deflated_header_bomb_is_skipped_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(headers, "MAX_HEADER_BYTES", 4 * 1024**2)
    path = _write(tmp_path / "in", "bomb.dcm", seeds.deflate_bomb(16 * 1024**2, "header"))
    assert path.stat().st_size < 64 * 1024
    start = time.monotonic()
    result = scan(tmp_path / "in")
    assert time.monotonic() - start < 2
    (skipped,) = result.skipped
    assert (
        skipped.reason
        == "deflated dataset inflates to more than 4.0 MB; refused (possible zip bomb)"
    )


def test_deflated_pixel_bomb_is_skipped_at_scan(tmp_path):
    path = _write(tmp_path, "bomb.dcm", seeds.deflate_bomb(100 * 1024**2, "pixels"))
    slices, reason = _within(5, read_file_header, path)
    assert slices == [] and reason == (
        "deflated pixel data claims 100.0 MB where the header's image needs 128 bytes; "
        "refused (possible zip bomb)"
    )


def test_deflated_decoding_is_bounded_by_the_declared_size(tmp_path, monkeypatch):
    monkeypatch.setattr(pixels, "MAX_HEADER_BYTES", 1024**2)
    path = _write(tmp_path, "bomb.dcm", seeds.deflate_bomb(16 * 1024**2, "trailer"))
    (plane,), reason = read_file_header(path)  # the header is fine
    assert reason is None
    with pytest.raises(LimitError, match="inflates to more than 1.0 MB"):
        decode_plane(plane.file, 0)
    ok = _write(tmp_path, "ok.dcm", seeds.synthetic_seeds()["deflated.dcm"])
    (plane,), _ = read_file_header(ok)
    assert decode_plane(plane.file, 0).shape == (6, 6)


CODESTREAMS = [
    ("SC_rgb_jpeg_dcmtk.dcm", "JPEG data is 60000×60000 pixels with 3 component(s)"),
    ("JPEG2000.dcm", "JPEG 2000 data is 60000×60000 pixels"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG data is 60000×60000 pixels"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 data is 60000×60000 pixels"),
    ("JPEG-LL.dcm", "JPEG data is 60000×60000 pixels"),
    ("JPEGLSNearLossless_16.dcm", "JPEG data is 60000×60000 pixels"),
]


@pytest.mark.parametrize(("name", "expected"), CODESTREAMS)
def test_compressed_frame_larger_than_its_header_is_refused(tmp_path, testdata, name, expected):
    """Before the check these made the decoders allocate 13-20 GB, or abort the process."""
    testdata(name)  # skips when the file is not installed
    path = _write(tmp_path, name, seeds.codestream_bomb(name))
    (first, *_), reason = read_file_header(path)
    assert reason is None  # the header itself is plausible: decoding must catch it
    kind, message = _bounded_child(decode_plane, first.file, 0)
    assert kind == "LimitError" and expected in message and "refused" in message


def test_folder_of_bombs_scans_fast_and_check_reports_each(tmp_path, testdata):
    folder = tmp_path / "bombs"
    for name, _ in CODESTREAMS[:2]:
        testdata(name)
        _write(folder, name, seeds.codestream_bomb(name))
    _write(folder, "claims.dcm", seeds.claims_rows())
    start = time.monotonic()
    index = build_index(folder)
    assert time.monotonic() - start < 2
    assert [Path(s.path).name for s in index.skipped] == ["claims.dcm"]

    def check_all():
        for entry in index.series:
            check_series(entry)
        return [entry.status for entry in index.series]

    kind, statuses = _bounded_child(check_all)
    assert kind == "ok" and statuses.count("refused") == 2, statuses


@pytest.mark.parametrize("rows", [32, 128, 4000])
def test_rle_frame_that_disagrees_with_the_header(tmp_path, testdata, rows):
    """MR_small_RLE is 64×64: fewer rows made pylibjpeg-rle panic (a BaseException)."""
    testdata("MR_small_RLE.dcm")
    path = _write(tmp_path, "rle.dcm", seeds.with_rows("MR_small_RLE.dcm", rows))
    (plane,), reason = read_file_header(path)
    with pytest.raises(pixels.DecodeError) as caught:
        decode_plane(plane.file, 0)
    message = str(caught.value)
    assert message.isprintable() and ("decoder failed" in message or "length" in message)


def test_rescaled_values_beyond_int32_widen_instead_of_failing(tmp_path):
    """Found by fuzzing: 32-bit unsigned values (or a huge slope) escaped as _Overflow."""
    u32 = seeds.ct_dataset(4, 4)
    u32.BitsAllocated = u32.BitsStored = 32
    u32.HighBit, u32.PixelRepresentation = 31, 0
    u32.PixelData = np.array([0, 1, 2**31 + 5, 2**32 - 1] * 4, dtype="<u4").tobytes()
    _write(tmp_path / "u32", "u32.dcm", seeds.file_bytes(u32))
    volume = load_series(build_index(tmp_path / "u32").series[0])
    assert volume.array.dtype == np.int64 and volume.array.max() == 2**32 - 1 - 1024
    steep = seeds.ct_dataset(4, 4)
    steep.RescaleSlope = 1e30
    _write(tmp_path / "steep", "steep.dcm", seeds.file_bytes(steep))
    volume = load_series(build_index(tmp_path / "steep").series[0])
    assert volume.array.dtype == np.float64
    assert volume.array.max() == pytest.approx(15e30)  # ramp 0..15
