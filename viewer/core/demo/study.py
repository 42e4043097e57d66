"""The radview demo study: a synthetic chest CT series and a real chest radiograph.

Layout of ``out_dir``::

    ct/IM00001.dcm ...   chest phantom, CT Image Storage, one file per slice
    cr/RG1_UNCR.dcm      chest radiograph (CR, MONOCHROME1, 1955 x 1841) from pydicom-data
    manifest.json        written last; its presence marks a complete demo

The CT and the radiograph belong to different patients, as shipped.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time

from viewer.core.demo.phantom import chest_phantom
from viewer.core.demo.writer import write_series

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "SIZES", "make_demo_study"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
CR_NAME = "RG1_UNCR.dcm"
#: size -> ((k, j, i) shape, (k, j, i) spacing in mm); both cover 300 x 358 x 358 mm.
SIZES = {
    "full": ((120, 512, 512), (2.5, 0.7, 0.7)),
    "small": ((40, 128, 128), (7.5, 2.8, 2.8)),
}
SERIES_DESCRIPTION = "Chest phantom (synthetic)"
STUDY_DESCRIPTION = "radview demo study"


def _read_manifest(root: pathlib.Path) -> dict | None:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_complete(root: pathlib.Path, manifest: dict | None, size: str) -> bool:
    if not manifest or manifest.get("version") != MANIFEST_VERSION:
        return False
    if manifest.get("size") != size:
        return False
    files = manifest.get("ct", {}).get("files", []) + (
        [manifest["cr"]["file"]] if manifest.get("cr") else []
    )
    return bool(files) and all((root / f).is_file() for f in files)


def _remove_previous(root: pathlib.Path, manifest: dict | None) -> None:
    """Delete the files an earlier (other size or version, or interrupted) demo wrote."""
    old = set(manifest.get("ct", {}).get("files", [])) if manifest else set()
    ct = root / "ct"
    if ct.is_dir():
        old.update(str(p.relative_to(root)) for p in ct.glob("IM*.dcm"))
    old.add(f"cr/{CR_NAME}")
    for rel in old:
        (root / rel).unlink(missing_ok=True)


def _result(root: pathlib.Path, manifest: dict, reused: bool) -> dict:
    out = dict(manifest)
    out["root"] = root
    out["manifest"] = root / MANIFEST_NAME
    out["reused"] = reused
    out["ct"] = dict(manifest["ct"], dir=root / "ct",
                     files=[root / f for f in manifest["ct"]["files"]])
    if manifest.get("cr"):
        out["cr"] = dict(manifest["cr"], file=root / manifest["cr"]["file"])
    return out


def _copy_radiograph(root: pathlib.Path) -> dict | None:
    """Copy RG1_UNCR.dcm from pydicom-data (never downloading); None if unavailable."""
    try:
        from pydicom.data import get_testdata_file

        src = get_testdata_file(CR_NAME, download=False)
    except (ImportError, OSError, ValueError, RuntimeError):  # pydicom-data broken: go without
        src = None
    if not src:
        return None
    dest = root / "cr" / CR_NAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return {"file": f"cr/{CR_NAME}", "source": str(src)}


def make_demo_study(out_dir: str | os.PathLike[str], *, size: str = "full") -> dict:
    """Write the demo study into ``out_dir`` (created if missing) and describe it.

    size: ``"full"`` (120 x 512 x 512 voxels of 2.5 x 0.7 x 0.7 mm) or ``"small"``
        (40 x 128 x 128 of 7.5 x 2.8 x 2.8 mm, same field of view, for tests).

    Idempotent: when ``out_dir/manifest.json`` describes a complete demo of the same size
    and version, nothing is rewritten and the result has ``reused=True``.

    Returns a dict with ``root``, ``manifest`` (paths), ``version``, ``size``, ``reused``,
    ``ct`` (``dir``; ``files`` in spatial order, k increasing = superior; ``shape`` and
    ``spacing`` in array order (k, j, i), spacing in mm; ``origin``, the LPS position in mm
    of voxel (0, 0, 0); ``study_uid``, ``series_uid``, ``series_description``;
    ``truth_ml``, the phantom's ground-truth volumes in mL per label plus ``lungs_total``;
    ``involvement_percent``), ``cr`` (``file``, ``source``) or None, ``missing`` (what could
    not be provided, with the reason) and ``seconds`` (time the build took).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    root = pathlib.Path(out_dir)
    manifest = _read_manifest(root)
    if _is_complete(root, manifest, size):
        return _result(root, manifest, reused=True)

    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    _remove_previous(root, manifest)

    shape, spacing = SIZES[size]
    nk, nj, ni = shape
    origin = (-(ni - 1) / 2 * spacing[2], -(nj - 1) / 2 * spacing[1], -(nk - 1) * spacing[0])
    hu, info = chest_phantom(shape, spacing, seed=0)
    files = write_series(
        hu, root / "ct", spacing=spacing, origin=origin, modality="CT",
        patient_name="Demo^Chest", patient_id="RADVIEW-DEMO",
        series_description=SERIES_DESCRIPTION, series_number=2, seed=0,
        extra={"StudyDescription": STUDY_DESCRIPTION, "ProtocolName": "Chest CT (synthetic)"},
    )
    import pydicom

    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    truth = {name: info[name]["volume_ml"] for name in ("lung_right", "lung_left", "ggo",
                                                         "consolidation")}
    truth["lungs_total"] = info["lungs_total_ml"]
    missing = []
    cr = _copy_radiograph(root)
    if cr is None:
        missing.append(f"cr: {CR_NAME} not found (is pydicom-data installed?)")
    manifest = {
        "version": MANIFEST_VERSION,
        "size": size,
        "ct": {
            "files": [str(p.relative_to(root)) for p in files],
            "shape": list(shape),
            "spacing": list(spacing),
            "origin": list(origin),
            "study_uid": str(first.StudyInstanceUID),
            "series_uid": str(first.SeriesInstanceUID),
            "series_description": SERIES_DESCRIPTION,
            "truth_ml": truth,
            "involvement_percent": info["involvement_percent"],
        },
        "cr": cr,
        "missing": missing,
        "seconds": round(time.perf_counter() - start, 3),
    }
    tmp = root / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, root / MANIFEST_NAME)
    return _result(root, manifest, reused=False)
