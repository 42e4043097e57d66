"""Bounded fuzz run of the header scan and pixel decoding (part of ``make test``).

Hypothesis mutates small seed files (pydicom's test files, one per decoding path, and
synthetic ones) with a few byte edits each, then scans and decodes the result; the
property is :func:`tests.fuzz.fuzz_dicom.check_input`: planes or one printable skip reason,
arrays of the header's size or a one-line ``ValueError``, nothing else, within a deadline.
The run happens in a forked child with an address-space limit, so a decoder abort or a
huge allocation fails the test (with the input kept) instead of the test process.
About 15 s in all (2000 examples; ``RADVIEW_FUZZ_EXAMPLES`` changes the number).
The long coverage-guided run is ``python -m tests.fuzz.fuzz_dicom --minutes 10``.

Every input a fuzz run found failing is kept in ``fuzz_regressions/`` and replayed here.
"""

from __future__ import annotations

import os
import signal
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.fuzz_dicom import FUZZ_MAX_FILE_BYTES, apply_ops, check_input, ops_strategy
from tests.fuzz.isolate import run_isolated
from tests.fuzz.seeds import seed_files
from viewer.core.dicom import limits

REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*.dcm"))
EXAMPLES = int(os.environ.get("RADVIEW_FUZZ_EXAMPLES", "2000"))
EXAMPLE_DEADLINE_S = 10
SEEDS = seed_files()


@contextmanager
def _fuzz_limits():
    """Small per-file limit (no example may allocate much), warnings silenced, an alarm
    that turns a hang into a failure."""

    def hang(signum, frame):
        raise TimeoutError(f"one example ran for more than {EXAMPLE_DEADLINE_S} s (hang)")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(EXAMPLE_DEADLINE_S)
    try:
        with mock.patch.object(limits, "MAX_FILE_BYTES", FUZZ_MAX_FILE_BYTES):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_bytes(data: bytes, folder: Path) -> None:
    with _fuzz_limits():
        check_input(data, folder)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.name)
def test_fuzz_regression(path, tmp_path):
    assert path.stat().st_size < 64 * 1024  # regression inputs stay small
    kind, message = run_isolated(_check_bytes, path.read_bytes(), tmp_path, timeout=60)
    assert kind == "ok", f"{kind}: {message}"


def test_seeds_cover_each_decoding_path():
    syntaxes = set()
    with tempfile.TemporaryDirectory() as folder, _fuzz_limits():
        from viewer.core.dicom.scan import read_file_header

        for name, data in SEEDS.items():
            path = Path(folder) / name
            path.write_bytes(data)
            slices, reason = read_file_header(path)
            if slices:
                syntaxes.add(slices[0].file.transfer_syntax)
    # native LE/BE, deflated, RLE, JPEG baseline, JPEG-LS, JPEG 2000 at least
    assert {
        "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
    } <= syntaxes  # fmt: skip


_WORK = Path(tempfile.mkdtemp(prefix="radview-fuzz-"))
_LAST = _WORK / "last-input.dcm"


@settings(
    max_examples=EXAMPLES,
    deadline=None,  # the alarm above bounds each example; timing varies on shared CPUs
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.sampled_from(sorted(SEEDS)), ops=ops_strategy())
def _fuzz(name, ops):
    data = apply_ops(SEEDS[name], ops)
    _LAST.write_bytes(data)  # left behind if a decoder takes the process down
    _check_bytes(data, _WORK)


def test_mutated_files_are_scanned_and_decoded_safely():
    """The hypothesis run, in a forked child: a C decoder that aborts fails this test
    (naming the input that did it) rather than ending the whole pytest process."""
    kind, message = run_isolated(_fuzz, timeout=600)
    if kind == "died":
        kept = Path(tempfile.mkdtemp(prefix="radview-fuzz-crash-")) / "input.dcm"
        kept.write_bytes(_LAST.read_bytes())
        pytest.fail(f"a fuzzed input crashed the process ({message}); input kept at {kept}")
    assert kind == "ok", f"{kind}: {message}"
