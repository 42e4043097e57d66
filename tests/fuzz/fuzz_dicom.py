"""Fuzz the DICOM header scan and pixel decoding with mutated small files.

The property (:func:`check_input`): whatever bytes a file holds, the scan returns planes
or one skip reason, and decoding a plane returns an array of the header's size or raises
a ``ValueError`` (radview's ``LimitError``/``DecodeError``) with a one-line message.
Any other exception, a crash, a hang or a large allocation is a bug.

Long run (not part of ``make test``; the bounded run is ``tests/core/dicom/test_fuzz.py``)::

    .venv/bin/python -m tests.fuzz.fuzz_dicom --minutes 10            # atheris if installed
    .venv/bin/python -m tests.fuzz.fuzz_dicom --minutes 10 --engine hypothesis

atheris (libFuzzer, coverage guided) writes each crashing input under ``build/fuzz/``
(``failure-*.dcm`` with its traceback in ``failure-*.txt``, one per distinct failure;
``oom-*``/``timeout-*`` from libFuzzer); the hypothesis engine prints the failing input.
Every crash found becomes a file in ``tests/core/dicom/fuzz_regressions/`` (read by
``test_fuzz.py``) once fixed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

#: inputs are bounded here so no example can legitimately allocate much
FUZZ_MAX_FILE_BYTES = 64 * 1024**2
MAX_PLANES_DECODED = 3
INTERESTING = (0, 1, 2, 7, 8, 12, 15, 16, 17, 32, 64, 127, 128, 255, 256, 0x7FFF, 0x8000,
               0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 10**9)  # fmt: skip


def limit_sizes() -> None:
    """Lower radview's per-file size limit for fuzzing (a fuzzed header may claim up to it)."""
    from viewer.core.dicom import limits

    limits.MAX_FILE_BYTES = FUZZ_MAX_FILE_BYTES


def check_input(data: bytes, folder: Path) -> None:
    """Scan ``data`` as a file in ``folder`` and decode a few of its planes (the property)."""
    from viewer.core.dicom.loaders import load_stack
    from viewer.core.dicom.pixels import decode_plane
    from viewer.core.dicom.scan import scan
    from viewer.core.dicom.series import plan_stacks

    path = folder / "input.dcm"
    path.write_bytes(data)
    result = scan(path)
    for skipped in result.skipped:
        reason = skipped.reason
        assert reason.strip() and reason.isprintable() and len(reason) <= 200, skipped
    assert bool(result.slices) != bool(result.skipped), "planes and a skip reason"
    for s in result.slices[:MAX_PLANES_DECODED]:
        try:
            arr = decode_plane(s.file, s.frame)
        except ValueError as exc:  # LimitError, DecodeError: the documented errors
            text = str(exc)
            assert text.strip() and text.isprintable() and len(text) <= 400, repr(text)
        else:
            assert arr.shape[:2] == (s.file.rows, s.file.columns)
    stacks, _ = plan_stacks(result.slices)  # planning never raises either
    for stack in stacks:  # small ones are loaded whole: rescale, LUTs, output dtype
        if len(stack.slices) > MAX_PLANES_DECODED or stack.error:
            continue
        try:
            volume = load_stack(stack, workers=1)
        except ValueError as exc:
            text = str(exc)
            assert text.strip() and text.isprintable() and len(text) <= 600, repr(text)
        else:
            assert volume.array.shape == stack.shape


#: one edit: (kind 0-5, where, value); kinds: flip a bit, set a byte, write an interesting
#: 2/4-byte integer, truncate, insert up to 16 bytes, delete up to 16 bytes
Op = tuple[int, int, int]


def apply_ops(data: bytes, ops: list[Op]) -> bytes:
    """``data`` with the edits applied; 70 % of positions fall in the header (first 2 KB)."""
    buf = bytearray(data)
    for kind, where, value in ops:
        if not buf:
            buf.append(value & 0xFF)
        head = min(len(buf), 2048)
        pos = where % head if where % 10 < 7 else where % len(buf)
        kind %= 6
        if kind == 0:
            buf[pos] ^= 1 << (value % 8)
        elif kind == 1:
            buf[pos] = value & 0xFF
        elif kind == 2:
            width = 2 if value & 1 else 4
            number = INTERESTING[(value >> 1) % len(INTERESTING)] % (1 << (8 * width))
            buf[pos : pos + width] = number.to_bytes(width, "little")
        elif kind == 3:
            del buf[where % len(buf) :]
        elif kind == 4:
            buf[pos:pos] = (value.to_bytes(4, "little") * 4)[: 1 + value % 16]
        else:
            del buf[pos : pos + 1 + value % 16]
    return bytes(buf)


def ops_strategy():
    """Hypothesis strategy for a list of edits (shrinks to fewer, smaller edits)."""
    from hypothesis import strategies as st

    op = st.tuples(st.integers(0, 5), st.integers(0, (1 << 20) - 1), st.integers(0, 2**32 - 1))
    return st.lists(op, min_size=1, max_size=8)


# -- engines ---------------------------------------------------------------------------------
def save_failure(data: bytes, exc: BaseException, out: Path, seen: set[str]) -> None:
    """Keep the first input of each distinct failure (exception type and place) in ``out``."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    signature = f"{type(exc).__name__} at {where}"
    if signature in seen:
        return
    seen.add(signature)
    name = "failure-" + hashlib.sha1(data).hexdigest()[:12]
    (out / f"{name}.dcm").write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (out / f"{name}.txt").write_text(f"{signature}\n\n{text}")
    print(f"\nFAILURE {signature}: {one_line_repr(exc)} -> {out / name}.dcm", flush=True)


def one_line_repr(exc: BaseException) -> str:
    return repr(str(exc).splitlines()[0][:200]) if str(exc) else type(exc).__name__


def run_atheris(
    minutes: float, out: Path, seeds: dict[str, bytes], extra: list[str], keep_going: bool
) -> int:
    import atheris

    limit_sizes()
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)
    work = Path(tempfile.mkdtemp(prefix="radview-fuzz-"))
    seen: set[str] = set()

    def one(data: bytes) -> None:
        if not keep_going:
            check_input(data, work)
            return
        try:
            check_input(data, work)
        except Exception as exc:  # noqa: BLE001 - recorded, then fuzzing goes on
            save_failure(data, exc, out, seen)

    args = [
        sys.argv[0], str(corpus), f"-max_total_time={int(minutes * 60)}",
        f"-artifact_prefix={out}/", "-rss_limit_mb=3072", "-timeout=20",
        "-max_len=65536", "-print_final_stats=1", *extra,
    ]  # fmt: skip
    atheris.Setup(args, one)
    atheris.Fuzz()
    return 0


def run_hypothesis(minutes: float, seeds: dict[str, bytes]) -> int:
    """Mutation batches driven by hypothesis until the time is up; stops at the first bug."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    limit_sizes()
    work = Path(tempfile.mkdtemp(prefix="radview-fuzz-"))
    names = sorted(seeds)

    @settings(max_examples=500, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(name=st.sampled_from(names), ops=ops_strategy())
    def batch(name: str, ops: list[Op]) -> None:
        check_input(apply_ops(seeds[name], ops), work)

    end = time.monotonic() + minutes * 60
    batches = 0
    while time.monotonic() < end:
        batch()
        batches += 1
        print(f"{batches * 500} examples, no failure", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.fuzz_dicom",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--out", default="build/fuzz", help="crash files and corpus (atheris)")
    parser.add_argument(
        "--stop-at-first", action="store_true",
        help="atheris: stop at the first failing input (default: record each distinct "
        "failure as failure-*.dcm/.txt under --out and go on)",
    )  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    warnings.simplefilter("ignore")
    engine = args.engine
    if engine in ("auto", "atheris"):
        try:
            import atheris
        except ImportError:
            if engine == "atheris":
                raise
            engine = "hypothesis"
        else:
            engine = "atheris"
            # coverage feedback from pydicom and radview's DICOM code (imported first here)
            with atheris.instrument_imports(include=["pydicom", "viewer.core.dicom"]):
                import pydicom  # noqa: F401

                import viewer.core.dicom.pixels  # noqa: F401
                import viewer.core.dicom.scan  # noqa: F401
    from tests.fuzz.seeds import seed_files

    seeds = seed_files()
    print(f"fuzzing {len(seeds)} seeds with {engine} for {args.minutes:g} min", flush=True)
    if engine == "atheris":
        out = Path(os.path.abspath(args.out))
        return run_atheris(args.minutes, out, seeds, extra, not args.stop_at_first)
    return run_hypothesis(args.minutes, seeds)


if __name__ == "__main__":
    sys.exit(main())
