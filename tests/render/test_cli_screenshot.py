"""`radview screenshot`: the command-line contract (headless, exit codes, one-line errors)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from vtkmodules.vtkIOImage import vtkPNGReader

from viewer.core.demo import write_series


def radview(*args, env_drop=("DISPLAY", "WAYLAND_DISPLAY")):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return subprocess.run([sys.executable, "-m", "viewer", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=180)


def _png(path) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    w, h, _ = out.GetDimensions()
    return vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[::-1]


@pytest.fixture(scope="module")
def ct_dir(tmp_path_factory):
    hu = np.full((12, 40, 48), -1000, dtype=np.int16)
    hu[5:8, 10:30, 10:38] = -600
    folder = tmp_path_factory.mktemp("ct") / "ct"
    write_series(hu, folder, spacing=(3.0, 1.0, 1.0), series_description="cli test")
    return folder


def test_writes_the_png_of_the_size_asked_without_a_display(ct_dir, tmp_path):
    out = tmp_path / "shot.png"
    proc = radview("screenshot", ct_dir, "--out", out, "--size", "420x180", "--window", "lung")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out} (420x180)\n"
    assert proc.stderr == ""
    rgb = _png(out)
    assert rgb.shape[:2] == (180, 420)
    assert (np.abs(rgb[..., 0].astype(int) - 128) <= 2).sum() > 500  # -600 HU mid-gray


@pytest.mark.parametrize("layout, size", [(None, (1500, 500)), ("single", (800, 800)),
                                          ("2x2", (1000, 1000))])
def test_default_sizes_per_layout(ct_dir, tmp_path, layout, size):
    out = tmp_path / "s.png"
    args = ["screenshot", ct_dir, "--out", out] + (["--layout", layout] if layout else [])
    proc = radview(*args)
    assert proc.returncode == 0, proc.stderr
    assert _png(out).shape[:2] == (size[1], size[0])


def test_radiograph_defaults_to_single(rt, tmp_path):
    out = tmp_path / "cr.png"
    proc = radview("screenshot", rt.testdata_path("RG1_UNCR.dcm"), "--out", out,
                   "--size", "300x320")
    assert proc.returncode == 0, proc.stderr
    assert _png(out).shape[:2] == (320, 300)


@pytest.mark.parametrize("args, code, words", [
    (["{missing}", "--out", "{out}"], 1, "no such file"),
    (["{ct}", "--out", "{out}", "--window", "liver"], 2, "unknown window"),
    (["{ct}", "--out", "{out}", "--window", "40,0"], 2, "width"),
    (["{ct}", "--out", "{out}", "--size", "big"], 2, "WIDTHxHEIGHT"),
    (["{ct}", "--out", "{out}", "--size", "10x10"], 2, "16 to"),
    (["{ct}", "--out", "{out}", "--layout", "3x3"], 2, "invalid choice"),
    (["{ct}", "--out", "{tmp}/nofolder/x.png"], 1, "does not exist"),
    (["{ct}", "--out", "{tmp}/x.jpg"], 2, ".png"),
    (["{ct}"], 2, "--out"),
    (["{notimage}", "--out", "{out}"], 1, "no loadable image series"),
    (["{ct}", "--out", "{out}", "--series", "1.2.3"], 1, "no series with UID"),
])
def test_bad_input_is_one_line_and_non_zero(ct_dir, tmp_path, args, code, words):
    notimage = tmp_path / "notes"
    notimage.mkdir()
    (notimage / "readme.txt").write_text("not an image")
    values = {"missing": tmp_path / "missing", "out": tmp_path / "o.png", "ct": ct_dir,
              "tmp": tmp_path, "notimage": notimage}
    proc = radview("screenshot", *(a.format(**values) for a in args))
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("radview: error: "), proc.stderr
    assert words in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_unwritable_output_folder(ct_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        proc = radview("screenshot", ct_dir, "--out", locked / "x.png")
    finally:
        locked.chmod(0o700)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"radview: error: output folder is not writable: "
                                        f"{locked}"]


def test_single_image_refuses_mpr(rt, tmp_path):
    proc = radview("screenshot", rt.testdata_path("RG1_UNCR.dcm"), "--out", tmp_path / "x.png",
                   "--layout", "mpr")
    assert proc.returncode == 2
    assert "needs a volume" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_info_still_imports_no_vtk(ct_dir):
    code = ("import sys\nfrom viewer.cli import main\n"
            f"assert main(['info', {str(ct_dir)!r}]) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('vtk', 'vtkmodules', 'PySide6', 'tensorflow')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
