"""The layers stay apart: the core, ai and the headless CLI never load Qt, VTK or TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from viewer.core.demo import write_series

HEAVY = ("PySide6", "vtkmodules", "vtk", "tensorflow", "keras", "pyqtgraph")


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return {line.split(".")[0] for line in out.stdout.split()}


def test_core_and_ai_import_no_gui_or_tensorflow():
    loaded = _modules_after(
        "import viewer.core.study_index, viewer.core.export.volume_files, viewer.core.demo\n"
        "import viewer.core.images, viewer.core.geometry, ai\n"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_convert_fast_path_imports_no_gui_or_tensorflow(tmp_path):
    write_series(np.zeros((2, 4, 4), dtype=np.int16), tmp_path / "s")
    out = tmp_path / "x.nii"
    loaded = _modules_after(
        "from viewer.cli import main\n"
        f"assert main(['convert', {str(tmp_path / 's')!r}, {str(out)!r}]) == 0\n"
    )
    assert out.exists()
    assert not loaded & set(HEAVY + ("SimpleITK", "nibabel")), loaded
