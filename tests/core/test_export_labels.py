"""Label NIfTI, PNG label images, overlay PNGs and safe writes (viewer.core.export).

NIfTI geometry is compared with what ``radview convert`` writes for the same series, read
by nibabel (an independent reader); PNGs are checked with Pillow (installed with highdicom)
so that row/column order is not judged by the library that wrote them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from viewer.core.demo.writer import write_series
from viewer.core.export import label_files
from viewer.core.export.atomic import atomic_path, check_destination
from viewer.core.export.label_files import (
    read_label_png,
    read_label_volume,
    write_label_nifti,
    write_label_png,
    write_overlay_png,
)
from viewer.core.geometry import VolumeGeometry
from viewer.core.labelmap import LabelMap, Provenance
from viewer.core.study_index import build_index, load_series
from viewer.core.volume import Volume
from viewer.core.windowing import WindowLevel, apply_window


def _direction(kind: str) -> np.ndarray:
    if kind == "oblique-reversed":
        c, s = np.cos(np.deg2rad(25)), np.sin(np.deg2rad(25))
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]) @ np.diag([1, 1, -1.0])
    if kind == "tilted":  # gantry tilt: k is not perpendicular to the slices (sheared grid)
        t = np.deg2rad(12)
        return np.array([[1.0, 0, 0], [0, 1.0, np.sin(t)], [0, 0, np.cos(t)]])
    return np.eye(3)


def _series(tmp_path: Path, kind: str = "oblique-reversed") -> Volume:
    src = tmp_path / "src"
    hu = np.full((6, 20, 26), -1000, dtype=np.int16)
    hu[:, 5:15, 6:20] = 40
    write_series(hu, src, spacing=(2.5, 0.9, 0.7), origin=(-20.0, 30.0, 100.0),
                 direction=_direction(kind), shuffle=True)  # fmt: skip
    index = build_index(src)
    return load_series(index.series[0])


def _labelmap(volume: Volume) -> LabelMap:
    labels = np.zeros(volume.geometry.shape, dtype=np.uint8)
    labels[1:4, 3:9, 4:12] = 2
    labels[3:6, 10:17, 8:22] = 5
    return LabelMap.from_names(
        volume.geometry, labels, {2: "left lung", 5: "ground-glass opacity", 7: "empty one"},
        Provenance("SEMIAUTOMATIC", "ct-infection", "3"),
    )  # fmt: skip


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# -- NIfTI ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_label_nifti_has_the_convert_affine_and_round_trips(tmp_path, out, suffix):
    volume = _series(tmp_path)
    labelmap = _labelmap(volume)
    converted = out / f"image{suffix}"
    proc = subprocess.run(
        [sys.executable, "-m", "viewer", "convert", str(tmp_path / "src"), str(converted)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path = write_label_nifti(labelmap, out / f"labels{suffix}", volume=volume)

    image, labels = nib.load(converted), nib.load(path)
    assert labels.shape == image.shape == volume.geometry.size_xyz
    np.testing.assert_array_equal(labels.affine, image.affine)
    np.testing.assert_allclose(labels.affine, volume.geometry.ijk_to_ras_matrix(), atol=1e-4)
    assert labels.get_data_dtype() == np.uint8
    # nibabel indexes [i, j, k]; ours is [k, j, i]
    assert np.array_equal(np.asarray(labels.dataobj).transpose(2, 1, 0), labelmap.labels)

    back = read_label_volume(path, volume)
    assert np.array_equal(back.labels, labelmap.labels)
    assert back.names() == {2: "left lung", 5: "ground-glass opacity", 7: "empty one"}
    assert back.segments[5] == labelmap.segments[5]
    assert back.provenance.algorithm_type == "SEMIAUTOMATIC"
    assert back.provenance.model_name == "ct-infection"


def test_sidecar_contract(tmp_path, out):
    volume = _series(tmp_path)
    write_label_nifti(_labelmap(volume), out / "case-01.nii.gz", volume=volume)
    doc = json.loads((out / "case-01.json").read_text())
    assert set(doc) == {"format", "version", "labels", "provenance", "source"}
    assert (doc["format"], doc["version"]) == ("radview-labels", 1)
    assert set(doc["labels"]) == {"2", "5", "7"}
    ggo = doc["labels"]["5"]
    assert set(ggo) == {"name", "color", "category", "type"}
    assert ggo["name"] == "ground-glass opacity" and ggo["color"] == [241, 214, 69]
    assert ggo["type"] == {"value": "112120", "scheme": "DCM", "meaning": "Ground glass opacity"}
    assert doc["provenance"]["algorithm_type"] == "SEMIAUTOMATIC"
    source = doc["source"]
    assert set(source) == {"series_uid", "files_dir", "study_uid", "frame_of_reference_uid"}
    assert source["files_dir"] == str((tmp_path / "src").resolve())
    assert Path(source["files_dir"]).is_absolute()
    assert source["series_uid"] == volume.series_uid
    assert source["study_uid"] == volume.header["study_uid"]
    import pydicom

    first = pydicom.dcmread(volume.files[0], stop_before_pixels=True)
    assert source["frame_of_reference_uid"] == first.FrameOfReferenceUID


def test_nifti_without_sidecar_gets_default_names(tmp_path, out):
    volume = _series(tmp_path)
    path = write_label_nifti(_labelmap(volume), out / "bare.nii.gz", volume=volume, sidecar=False)
    assert not (out / "bare.json").exists()
    back = read_label_volume(path, volume)
    assert back.names() == {2: "segment 2", 5: "segment 5"}
    assert back.provenance.algorithm_type == "MANUAL"


def test_sheared_grid_round_trips(tmp_path, out):
    volume = _series(tmp_path, "tilted")
    assert not volume.geometry.is_orthonormal()
    labelmap = _labelmap(volume)
    path = write_label_nifti(labelmap, out / "tilted.nii.gz", volume=volume)
    np.testing.assert_allclose(nib.load(path).affine, volume.geometry.ijk_to_ras_matrix(),
                               atol=1e-4)  # fmt: skip
    assert np.array_equal(read_label_volume(path, volume).labels, labelmap.labels)


def test_grid_mismatch_is_refused(tmp_path, out):
    volume = _series(tmp_path)
    g = volume.geometry
    labels = _labelmap(volume).labels
    cases = {
        "shifted": (VolumeGeometry(g.shape, g.spacing, np.add(g.origin, (0, 0, 1.25)),
                                   g.direction), "origin"),
        "spacing": (VolumeGeometry(g.shape, (2.0, 0.9, 0.7), g.origin, g.direction), "spacing"),
        "axes": (VolumeGeometry(g.shape, g.spacing, g.origin, np.eye(3)), "axes"),
    }  # fmt: skip
    for name, (geometry, reason) in cases.items():
        path = write_label_nifti(LabelMap(geometry, labels), out / f"{name}.nii.gz")
        with pytest.raises(ValueError, match=reason) as err:
            read_label_volume(path, volume)
        assert "\n" not in str(err.value)
    small = VolumeGeometry((5, 20, 26), g.spacing, g.origin, g.direction)
    path = write_label_nifti(LabelMap(small, labels[:5]), out / "short.nii.gz")
    with pytest.raises(ValueError, match="5x20x26 voxels"):
        read_label_volume(path, volume)
    with pytest.raises(ValueError, match="geometry|voxels|spacing|origin|axes"):
        write_label_nifti(LabelMap(small, labels[:5]), out / "x.nii.gz", volume=volume)
    # a probability map is not a label volume
    image = sitk.GetImageFromArray(np.full(g.shape, 0.5, dtype=np.float32))
    image.SetSpacing(g.spacing_xyz)
    image.SetOrigin(g.origin)
    image.SetDirection(g.direction.ravel().tolist())
    sitk.WriteImage(image, str(out / "prob.nii.gz"))
    with pytest.raises(ValueError, match="whole numbers"):
        read_label_volume(out / "prob.nii.gz", volume)
    with pytest.raises(ValueError, match="not a readable"):
        (out / "junk.nii.gz").write_bytes(b"not a nifti")
        read_label_volume(out / "junk.nii.gz", volume)


# -- PNG --------------------------------------------------------------------------------------
def test_label_png_round_trip_keeps_rows_and_columns(tmp_path, out):
    volume = _series(tmp_path)
    labelmap = _labelmap(volume)
    path = write_label_png(labelmap, out / "slice3.png", k=3)
    pixels = np.asarray(Image.open(path))
    assert pixels.dtype == np.uint8 and pixels.shape == volume.geometry.shape[1:]
    assert np.array_equal(pixels, labelmap.labels[3])  # row 0 = first DICOM row, no flips
    back = read_label_png(path, volume, k=3)
    assert np.array_equal(back.labels[3], labelmap.labels[3])
    assert not back.labels[[0, 1, 2, 4, 5]].any()
    assert back.names() == {2: "segment 2", 5: "segment 5"}

    write_label_png(labelmap, out / "named.png", k=3, volume=volume, sidecar=True)
    assert read_label_png(out / "named.png", volume, k=3).segments[2].name == "left lung"


def test_label_png_wrong_size_or_colour_is_refused(tmp_path, out):
    volume = _series(tmp_path)
    Image.fromarray(np.zeros((26, 20), np.uint8)).save(out / "transposed.png")
    with pytest.raises(ValueError, match="20x26 pixels"):
        read_label_png(out / "transposed.png", volume)
    rgb = np.zeros((20, 26, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(out / "photo.png")
    with pytest.raises(ValueError, match="colour"):
        read_label_png(out / "photo.png", volume)


def test_overlay_png_colours_outline_and_orientation(tmp_path, out):
    volume = _series(tmp_path)
    labelmap = _labelmap(volume)
    path = write_overlay_png(volume, labelmap, out / "overlay.png", k=2, window=(40, 400),
                             opacity=0.4)  # fmt: skip
    rgb = np.asarray(Image.open(path)).astype(float)
    assert rgb.shape == (*volume.geometry.shape[1:], 3)
    grey = apply_window(volume.array[2], WindowLevel(40, 400)).astype(float)
    lung = np.array(labelmap.segments[2].color, float)
    # inside label 2 (rows 3..8, columns 4..11), away from its border: blended
    np.testing.assert_allclose(rgb[5, 7], 0.6 * grey[5, 7] + 0.4 * lung, atol=0.51)
    # its 1-pixel outline at full colour, the pixel just outside untouched
    np.testing.assert_array_equal(rgb[3, 7], lung)
    np.testing.assert_array_equal(rgb[2, 7], [grey[2, 7]] * 3)
    # hidden segments are not drawn
    labelmap.update_segment(2, visible=False)
    write_overlay_png(volume, labelmap, out / "hidden.png", k=2, window=(40, 400))
    hidden = np.asarray(Image.open(out / "hidden.png")).astype(float)
    np.testing.assert_array_equal(hidden[3, 7], [grey[3, 7]] * 3)


def test_overlay_png_inverts_monochrome1():
    geometry = VolumeGeometry((1, 8, 10))
    array = np.tile(np.arange(10, dtype=np.int16) * 100, (1, 8, 1))
    volume = Volume(array, geometry, modality="CR", invert_display=True, window=(500, 1000))
    labelmap = LabelMap(geometry)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = write_overlay_png(volume, labelmap, Path(folder) / "cr.png")
        rgb = np.asarray(Image.open(path))
    assert rgb[0, 0, 0] > 200 and rgb[0, -1, 0] < 50  # low values white: bone white
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


# -- safe writes ------------------------------------------------------------------------------
def test_source_folder_is_refused_unless_allowed(tmp_path, out):
    volume = _series(tmp_path)
    labelmap = _labelmap(volume)
    src = tmp_path / "src"
    (src / "sub").mkdir()
    for target in (src / "labels.nii.gz", src / "sub" / "labels.nii.gz"):
        with pytest.raises(ValueError, match="source folder"):
            write_label_nifti(labelmap, target, volume=volume)
    with pytest.raises(ValueError, match="source folder"):
        write_label_png(labelmap, src / "x.png", volume=volume)
    with pytest.raises(ValueError, match="source folder"):
        write_overlay_png(volume, labelmap, src / "x.png")
    assert not list(src.glob("*.nii.gz")) and not list(src.glob("*.png"))
    assert write_label_nifti(labelmap, src / "ok.nii.gz", volume=volume, allow_into_source=True)
    with pytest.raises(ValueError, match="does not exist"):
        check_destination(tmp_path / "missing" / "x.png", [])
    assert check_destination(out / "x.png", [src]) == out / "x.png"


def test_failed_writes_leave_no_partial_file(tmp_path, out, monkeypatch):
    volume = _series(tmp_path)
    labelmap = _labelmap(volume)
    previous = out / "labels.nii.gz"
    previous.write_bytes(b"previous")

    class Boom(Exception):
        pass

    real_gzip = label_files.gzip.GzipFile

    class FailingGzip(real_gzip):
        def write(self, data):
            super().write(data)
            if len(data) > 1000:  # after the header, in the middle of the voxels
                raise Boom("disk full")

    monkeypatch.setattr(label_files.gzip, "GzipFile", FailingGzip)
    with pytest.raises(Boom):
        write_label_nifti(labelmap, previous, volume=volume)
    assert previous.read_bytes() == b"previous"
    assert sorted(p.name for p in out.iterdir()) == ["labels.nii.gz"]  # no .part, no .json

    def failing_png(image, name, *args, **kwargs):
        Path(name).write_bytes(b"\x89PNG partial")
        raise RuntimeError("ITK ERROR: cannot write")

    monkeypatch.setattr(label_files.sitk, "WriteImage", failing_png)
    with pytest.raises(RuntimeError):
        write_label_png(labelmap, out / "slice.png", k=1)
    with pytest.raises(RuntimeError):
        write_overlay_png(volume, labelmap, out / "overlay.png", k=1)
    assert sorted(p.name for p in out.iterdir()) == ["labels.nii.gz"]

    with pytest.raises(ValueError, match="boom"), atomic_path(out / "x.bin") as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["labels.nii.gz"]
