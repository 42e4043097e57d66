"""Autosave journal of label-map edits: small records appended as the user edits, replayed
after a crash (no Qt; the prompt and the wiring live in ``viewer.qt.autosave``).

Where: one file per editing session of a series, in a folder the caller gives (the user's
data folder, never a source folder: :meth:`Journal.create` refuses one). The file name is
``<sha256(SeriesInstanceUID)[:24]>-<created>-<pid>.rvjournal`` (no identifier in clear in
the name); folders are made ``0700`` and files ``0600`` (the header holds the series UID and
the source folder). :func:`pending_journals` lists the files of a series that no running
viewer holds (a writer keeps an exclusive OS lock on its file; the OS drops it when the
process dies, also on SIGKILL).

Format (version :data:`FORMAT_VERSION`): :data:`MAGIC`, then records. Each record is a
frame ``<kind: u8><length: u32><crc32(kind byte + payload): u32>`` (little-endian) and its
payload:

* ``HEADER`` (first, JSON): format, series_uid, geometry (shape, spacing, origin, direction)
  and its :func:`geometry_fingerprint`, source folder, created (unix time), pid;
* ``SEGMENTS`` (JSON): the whole segment table (name, colour, category/type codes, visible,
  opacity, locked) and the provenance, written whenever it differs from the last one;
* ``LABELS``: a bbox ``((k0, k1), (j0, j1), (i0, i1))``, the unix time, the number of
  edits the record stands for, and the NEW label values inside the bbox (uint8,
  zlib-compressed). A checkpoint is a LABELS record over the whole volume.

Replay (:func:`recover`) starts from an all-zero label volume and applies the records in
order. Reading stops at the first record that is torn (shorter than its frame says), fails
its CRC or does not decode: everything before it is recovered and ``dropped_tail`` is set.

When records are written (at the end of each stroke, undo step, undo/redo...):
:class:`viewer.core.journal_recorder.JournalRecorder`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import (
    BBox,
    Code,
    LabelMap,
    Provenance,
    Segment,
    bbox_slices,
    clip_bbox,
)

MAGIC = b"radview journal\n"
FORMAT_VERSION = 1
SUFFIX = ".rvjournal"
HEADER, SEGMENTS, LABELS = 1, 2, 3
DEFAULT_MAX_BYTES = 8 * 2**20
_FRAME = struct.Struct("<BII")  # kind, payload length, crc32
_LABELS = struct.Struct("<6IdI")  # bbox (k0 k1 j0 j1 i0 i1), unix time, edits
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_FAST = 2**20  # regions above this many voxels are compressed fast (zlib level 1)

try:
    import fcntl
except ImportError:  # Windows
    import msvcrt

    fcntl = None


def _lock(fd: int) -> bool:
    """An exclusive lock the OS drops when the process dies; False when another holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


class JournalError(ValueError):
    """A journal that cannot be read or does not belong to the open series (one line)."""


def series_key(series_uid: str) -> str:
    """The file-name prefix of a series' journals (a hash: no UID in clear)."""
    return hashlib.sha256(series_uid.encode("utf-8")).hexdigest()[:24]


def geometry_fingerprint(geometry: VolumeGeometry) -> str:
    """A short hash of the grid (shape, spacing to 1e-4 mm, origin to 1e-3 mm, direction)."""
    values = [
        list(geometry.shape),
        [round(s, 4) for s in geometry.spacing],
        [round(o, 3) for o in geometry.origin],
        [round(float(d), 5) + 0.0 for d in np.asarray(geometry.direction).ravel()],
    ]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


def make_header(series_uid: str, geometry: VolumeGeometry, source: str = "") -> dict:
    return {
        "format": FORMAT_VERSION,
        "series_uid": series_uid,
        "shape": list(geometry.shape),
        "spacing": list(geometry.spacing),
        "origin": list(geometry.origin),
        "direction": np.asarray(geometry.direction).tolist(),
        "fingerprint": geometry_fingerprint(geometry),
        "source": source,
        "created": time.time(),
        "pid": os.getpid(),
    }


def table_payload(labelmap: LabelMap) -> bytes:
    """The SEGMENTS record of a label map's segment table and provenance (JSON)."""
    segments = [
        {
            "label": v, "name": s.name, "color": list(s.color),
            "category": [s.category.value, s.category.scheme, s.category.meaning],
            "type": [s.type.value, s.type.scheme, s.type.meaning],
            "visible": s.visible, "opacity": s.opacity, "locked": s.locked,
        }
        for v, s in sorted(labelmap.segments.items())
    ]  # fmt: skip
    p = labelmap.provenance
    provenance = {"algorithm_type": p.algorithm_type, "model_name": p.model_name,
                  "model_version": p.model_version, "extra": p.extra}  # fmt: skip
    return json.dumps({"segments": segments, "provenance": provenance}, default=str).encode()


def _table(payload: bytes) -> tuple[dict[int, Segment], Provenance]:
    data = json.loads(payload)
    segments = {
        int(s["label"]): Segment(
            str(s["name"]), tuple(int(c) for c in s["color"]), Code(*s["category"]),
            Code(*s["type"]), bool(s["visible"]), float(s["opacity"]), bool(s["locked"]),
        )
        for s in data["segments"]
    }  # fmt: skip
    p = data["provenance"]
    provenance = Provenance(
        str(p["algorithm_type"]), str(p["model_name"]), str(p["model_version"]),
        dict(p.get("extra") or {}),
    )  # fmt: skip
    return segments, provenance


def labels_payload(bbox: BBox, values: np.ndarray, edits: int = 1) -> bytes:
    """The LABELS record of ``values`` (uint8, the bbox's shape) written into ``bbox``."""
    flat = [int(x) for pair in bbox for x in pair]
    data = np.ascontiguousarray(values, dtype=np.uint8)
    level = 1 if data.size > _FAST else 6
    return _LABELS.pack(*flat, time.time(), int(edits)) + zlib.compress(data, level)


def _labels(payload: bytes, shape) -> tuple[BBox, np.ndarray, float, int]:
    *flat, when, edits = _LABELS.unpack_from(payload)
    bbox = ((flat[0], flat[1]), (flat[2], flat[3]), (flat[4], flat[5]))
    if clip_bbox(bbox, shape) != bbox:
        raise JournalError(f"record bbox {bbox} lies outside the volume {tuple(shape)}")
    size = int(np.prod([b - a for a, b in bbox]))
    inflate = zlib.decompressobj()
    raw = inflate.decompress(payload[_LABELS.size :], size + 1)  # bounded: no zip bomb
    if len(raw) != size or not inflate.eof:
        raise JournalError("record data does not match its bbox")
    values = np.frombuffer(raw, dtype=np.uint8).reshape([b - a for a, b in bbox])
    return bbox, values, when, edits


def frame(kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(bytes([kind])))
    return _FRAME.pack(kind, len(payload), crc) + payload


def read_records(data: bytes) -> tuple[list[tuple[int, bytes]], bool]:
    """The intact records of a journal's bytes and whether a damaged tail was dropped."""
    if not data.startswith(MAGIC):
        raise JournalError("not a radview autosave journal")
    records, pos = [], len(MAGIC)
    while pos < len(data):
        if len(data) - pos < _FRAME.size:
            return records, True
        kind, length, crc = _FRAME.unpack_from(data, pos)
        payload = data[pos + _FRAME.size : pos + _FRAME.size + length]
        if len(payload) != length or zlib.crc32(payload, zlib.crc32(bytes([kind]))) != crc:
            return records, True
        records.append((kind, payload))
        pos += _FRAME.size + length
    return records, False


@dataclass
class JournalInfo:
    """What a journal holds (read without replaying the labels)."""

    path: Path
    header: dict
    n_records: int  # intact records, header included
    n_edits: int  # label edits they stand for
    dropped_tail: bool
    last_time: float  # unix time of the last intact record

    @property
    def series_uid(self) -> str:
        return str(self.header.get("series_uid", ""))

    @property
    def source(self) -> str:
        return str(self.header.get("source", ""))


@dataclass
class Recovery:
    """A journal replayed: the label map (segments, provenance) and what was read."""

    labelmap: LabelMap
    info: JournalInfo


def _parse(path) -> tuple[list[tuple[int, bytes]], JournalInfo]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path.name}: {exc.strerror}") from exc
    records, dropped = read_records(data)
    if not records or records[0][0] != HEADER:
        raise JournalError(f"{path.name} has no header: not a usable journal")
    try:
        header = json.loads(records[0][1])
        version = int(header["format"])
    except (ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"{path.name} has a damaged header") from exc
    if version != FORMAT_VERSION:
        raise JournalError(f"{path.name} is journal format {version}, not {FORMAT_VERSION}")
    edits, last = 0, float(header.get("created", 0.0))
    for kind, payload in records[1:]:
        if kind == LABELS and len(payload) >= _LABELS.size:
            *_, when, count = _LABELS.unpack_from(payload)
            edits, last = edits + count, max(last, when)
    info = JournalInfo(path, header, len(records), edits, dropped, last)
    return records, info


def read_info(path) -> JournalInfo:
    """Header, counts and time of a journal; JournalError when it is not one."""
    return _parse(path)[1]


def recover(path, geometry: VolumeGeometry | None = None) -> Recovery:
    """Replay a journal onto an empty label volume.

    ``geometry``: the open series' grid; JournalError when the journal was made on another
    grid (fingerprint mismatch). Without it the grid comes from the header. A record that
    does not decode ends the replay like a torn one (``info.dropped_tail``).
    """
    records, info = _parse(path)
    h = info.header
    try:
        own = VolumeGeometry(tuple(h["shape"]), tuple(h["spacing"]), tuple(h["origin"]),
                             np.asarray(h["direction"], dtype=float))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{info.path.name} has a damaged header") from exc
    if geometry is not None and geometry_fingerprint(geometry) != h.get("fingerprint"):
        made = "\u00d7".join(str(n) for n in own.shape[::-1])
        here = "\u00d7".join(str(n) for n in geometry.shape[::-1])
        raise JournalError(
            f"the autosaved edits were made on a {made} grid that does not match the open "
            f"series ({here}): open the series they belong to ({info.source or 'unknown'})"
        )
    geometry = geometry or own
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    segments: dict[int, Segment] = {}
    provenance = Provenance()
    edits, applied = 0, 1
    for kind, payload in records[1:]:
        try:
            if kind == SEGMENTS:
                segments, provenance = _table(payload)
            elif kind == LABELS:
                bbox, values, when, count = _labels(payload, geometry.shape)
                labels[bbox_slices(bbox)] = values
                edits += count
        except (ValueError, KeyError, TypeError, IndexError, struct.error, zlib.error):
            info.dropped_tail = True
            break
        applied += 1
    info.n_records, info.n_edits = applied, edits
    segments = {v: s for v, s in segments.items() if 0 < v < 256}
    return Recovery(LabelMap(geometry, labels, segments, provenance), info)


def find_journals(folder, series_uid: str) -> list[Path]:
    """The journal files of a series in ``folder``, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.glob(f"{series_key(series_uid)}-*{SUFFIX}")
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def in_use(path) -> bool:
    """Whether a running viewer (this one included) is writing the journal."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        return not _lock(fd)
    finally:
        os.close(fd)  # closing drops the probe's lock


def pending_journals(folder, series_uid: str) -> list[JournalInfo]:
    """Journals of a series that no viewer holds and that hold something, newest first.
    Unreadable files are skipped (they are left on disk)."""
    out = []
    for path in find_journals(folder, series_uid):
        if in_use(path):
            continue
        try:
            info = read_info(path)
        except JournalError:
            continue
        if info.series_uid == series_uid and info.n_records > 1:
            out.append(info)
    return out


def _fsync_dir(folder: Path) -> None:
    """Make a new or renamed name durable (POSIX; folders cannot be opened on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _inside(folder: Path, source_dirs) -> str | None:
    real = Path(os.path.realpath(folder))
    for src in source_dirs:
        src_real = Path(os.path.realpath(os.fspath(src)))
        if real == src_real or src_real in real.parents:
            return str(src_real)
    return None


class Journal:
    """An open journal file: append records durably, compact, close (keep or delete)."""

    def __init__(self, path: Path, fd: int, header: dict, fsync: bool = True) -> None:
        self.path, self.header, self.fsync = path, header, fsync
        self._fd = fd
        self.size = os.fstat(fd).st_size

    @classmethod
    def create(cls, folder, header: dict, source_dirs=(), fsync: bool = True) -> Journal:
        """A new journal file in ``folder`` (made 0700 if needed), locked, header written.
        JournalError when ``folder`` lies inside one of ``source_dirs``."""
        folder = Path(os.path.abspath(os.fspath(folder)))
        src = _inside(folder, source_dirs)
        if src is not None:
            raise JournalError(f"refusing to autosave into the source folder {src}")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = f"{series_key(header['series_uid'])}-{time.strftime('%Y%m%dT%H%M%S')}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY
        for n in range(1, 1000):  # several sessions of one series in the same second
            path = folder / f"{stem}-{os.getpid()}{f'-{n}' if n > 1 else ''}{SUFFIX}"
            try:
                fd = os.open(path, flags, 0o600)
                break
            except FileExistsError:
                continue
        else:
            raise JournalError(f"cannot name a new journal in {folder}")
        journal = cls(path, fd, header, fsync)
        _lock(fd)
        journal._write(MAGIC + frame(HEADER, json.dumps(header).encode()))
        _fsync_dir(folder)
        return journal

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(self, kind: int, payload: bytes) -> None:
        """Append one record; it is on disk (fsync) when this returns."""
        self._write(frame(kind, payload))

    def rewrite(self, records: list[tuple[int, bytes]]) -> None:
        """Replace the file by header + ``records`` atomically (temporary file, fsync,
        rename); the journal keeps its name and its lock."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = MAGIC + frame(HEADER, json.dumps(self.header).encode())
        body += b"".join(frame(k, p) for k, p in records)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
        try:
            _write_all(fd, body)
            os.fsync(fd)
            if os.name == "nt":  # an open file cannot be replaced there: close, reopen
                os.close(fd)
                fd = -1
                os.close(self._fd)
                self._fd = -1
                os.replace(tmp, self.path)
                fd = os.open(self.path, os.O_RDWR | _BINARY)
                _lock(fd)
            else:  # the lock moves with the new file: no moment without one
                _lock(fd)
                os.replace(tmp, self.path)
                os.close(self._fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        self._fd = fd
        os.lseek(fd, 0, os.SEEK_END)
        self.size = len(body)
        _fsync_dir(self.path.parent)

    def close(self, delete: bool = False) -> None:
        """Close (and unlock) the file; ``delete`` removes it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if delete:
            self.path.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        _write_all(self._fd, data)
        if self.fsync:
            os.fsync(self._fd)
        self.size += len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
