"""Fixtures for the conformance tests on real DICOM files.

The inputs are the files pydicom ships (``pydicom/data/test_files``) and the pydicom-data
package (``data_store/data``), found with ``pydicom.data.get_testdata_file``. Nothing is
downloaded: a file that is not installed skips the test that needs it. Inputs are never
written to; tests that need a folder copy files into ``tmp_path`` first.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from viewer.core.study_index import build_index, load_series


def testdata_path(name: str) -> Path:
    """Path of an installed pydicom test file; skips the test when it is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


def load_only(name_or_path):
    """Index one file or folder holding exactly one series and load it: (entry, volume)."""
    path = name_or_path if isinstance(name_or_path, Path) else testdata_path(name_or_path)
    index = build_index(path)
    assert len(index.series) == 1, (path, [s.uid for s in index.series], index.skipped)
    entry = index.series[0]
    assert entry.status == "ok", entry.status
    return entry, load_series(entry)


@pytest.fixture(name="testdata", scope="session")
def _testdata():
    """``testdata(name)`` -> Path of an installed pydicom test file (skips if missing)."""
    return testdata_path


@pytest.fixture(name="load_only", scope="session")
def _load_only():
    """``load_only(name or Path)`` -> (entry, volume) of the only series found there."""
    return load_only
