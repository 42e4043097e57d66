"""``radview convert`` of real DICOM to .nii, .nii.gz and .nrrd, read back by other libraries.

nibabel arrays are indexed [i, j, k] in RAS; our volume arrays are [k, j, i] in LPS.
SimpleITK reports LPS (it converts NIfTI's RAS) with (i, j, k) spacing and a row-major
direction matrix whose columns are the axes, so its values equal our geometry directly.
dcm2niix, when installed, gives an independent conversion to compare with.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.study_index import build_index, load_series

# CT_small / MR_small: one axial slice; eCT_Supplemental: enhanced CT whose k axis points
# to the feet (frames re-sorted); MR2_UNCR: oblique, fractional rescale (float32 values).
CASES = ["CT_small.dcm", "MR_small.dcm", "eCT_Supplemental.dcm", "MR2_UNCR.dcm"]
# distinct stems: ITK's NIfTI reader given X.nii.gz reads X.nii's voxels when both exist
OUTPUTS = {"nii": "vol_plain.nii", "nii.gz": "vol_gzip.nii.gz", "nrrd": "vol.nrrd"}


def _convert(src: Path, out: Path, cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "viewer", "convert", str(src), str(out)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.is_file()


def _assert_values(got: np.ndarray, volume) -> None:
    expected = volume.array
    assert got.shape == expected.shape
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)
    else:
        assert np.array_equal(got, expected)


@pytest.fixture(scope="module", params=CASES)
def converted(request, tmp_path_factory, testdata):
    """(volume loaded from the DICOM, {format: written path}) for one real file."""
    tmp_path = tmp_path_factory.mktemp(Path(request.param).stem)
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(testdata(request.param), src / request.param)
    volume = load_series(build_index(src).series[0])
    outs = {}
    for fmt, name in OUTPUTS.items():
        outs[fmt] = tmp_path / name
        _convert(src, outs[fmt], tmp_path)
    return volume, outs


@pytest.mark.parametrize("fmt", ["nii", "nii.gz"])
def test_nibabel_reads_voxels_and_ras_affine(converted, fmt):
    volume, outs = converted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = nib.load(outs[fmt])
    data = np.asarray(img.get_fdata())  # [i, j, k], NIfTI scaling applied
    assert data.shape == volume.geometry.size_xyz
    _assert_values(np.transpose(data, (2, 1, 0)), volume)
    ras = volume.geometry.ijk_to_ras_matrix()
    np.testing.assert_allclose(img.affine, ras, atol=1e-4)
    assert int(img.header["sform_code"]) > 0
    if volume.geometry.is_orthonormal():
        assert int(img.header["qform_code"]) > 0
        np.testing.assert_allclose(img.get_qform(), ras, atol=1e-3)
    # the voxel centre of (i, j, k) = (last column, 0, last slice) in RAS is -LPS x, -LPS y
    g = volume.geometry
    ijk = np.array([g.shape[2] - 1, 0, g.shape[0] - 1, 1.0])
    lps = g.index_to_lps((g.shape[0] - 1, 0, g.shape[2] - 1))
    np.testing.assert_allclose(img.affine @ ijk, [-lps[0], -lps[1], lps[2], 1], atol=1e-3)


@pytest.mark.parametrize("fmt", ["nii", "nii.gz", "nrrd"])
def test_simpleitk_reads_voxels_and_lps_geometry(converted, fmt):
    volume, outs = converted
    image = sitk.ReadImage(str(outs[fmt]))
    g = volume.geometry
    _assert_values(sitk.GetArrayFromImage(image), volume)  # SimpleITK arrays are [k, j, i]
    np.testing.assert_allclose(image.GetOrigin(), g.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), g.spacing_xyz, atol=1e-5)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), g.direction, atol=1e-5)


def test_dcm2niix_agrees(converted, tmp_path):
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix is None:
        pytest.skip("dcm2niix is not on PATH")
    volume, outs = converted
    out_dir = tmp_path / "dcm2niix"
    out_dir.mkdir()
    proc = subprocess.run(
        [dcm2niix, "-z", "n", "-f", "out", "-o", str(out_dir), str(outs["nii"].parent / "in")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (theirs_path,) = out_dir.glob("*.nii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = nib.as_closest_canonical(nib.load(outs["nii"]))
        theirs = nib.as_closest_canonical(nib.load(theirs_path))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    a, b = ours.get_fdata(), theirs.get_fdata()
    if volume.array.dtype.kind == "f":  # we keep float32, dcm2niix scales in float64
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-3)
    else:
        assert np.array_equal(a, b)
