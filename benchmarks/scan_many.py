"""Benchmark: header scan of a folder of tens of thousands of small DICOM files.

Writes N one-slice 8x8 CT files (default 25 000) into a temporary folder, warms the page
cache, then measures in fresh processes, for 1 and 2 worker processes:

* files per second of ``build_index`` (scan + planning into one 25 000-slice series);
* memory kept per file and peak RSS above the interpreter's baseline (after imports);
* cancel latency: time from ``cancelled()`` turning true (after 5 000 files) to return.

Target (issue 7): bounded memory (a few KB a file, no dataset kept), cancel < 0.5 s.
Usage: python benchmarks/scan_many.py [--files 25000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
from viewer.core.study_index import build_index
folder, workers, cancel_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = rss("VmRSS:")
state = {"at": None}
def progress(done, total):
    if cancel_after and done == cancel_after:
        state["at"] = time.perf_counter()
t = time.perf_counter()
index = build_index(folder, progress, lambda: state["at"] is not None, workers=workers)
end = time.perf_counter()
files = sum(len(s.files) for s in index.series)
print(json.dumps({
    "seconds": end - t, "files": files, "series": len(index.series),
    "cancelled": index.cancelled,
    "cancel_latency": (end - state["at"]) if state["at"] else None,
    "kept": rss("VmRSS:") - base, "peak": rss("VmHWM:") - base,
}))
"""


def probe(folder: Path, workers: int, cancel_after: int = 0) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), str(workers), str(cancel_after)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=25_000)
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    from tests.fuzz.seeds import write_many

    folder = Path(args.keep or tempfile.mkdtemp(prefix="radview-scan-many-"))
    try:
        t = time.perf_counter()
        if not any(folder.glob("im*.dcm")):
            write_many(folder, args.files)
        print(f"{args.files} files written in {time.perf_counter() - t:.1f} s ({folder})")
        for path in folder.iterdir():  # warm the page cache
            path.read_bytes()
        for workers in (1, 2):
            r = probe(folder, workers)
            assert r["files"] == args.files and r["series"] == 1, r
            print(
                f"workers={workers}: {r['files'] / r['seconds']:,.0f} files/s "
                f"({r['seconds']:.1f} s), memory kept {r['kept'] / r['files']:,.0f} B/file, "
                f"peak RSS +{r['peak'] / 2**20:.0f} MB"
            )
            c = probe(folder, workers, cancel_after=min(5000, args.files // 2))
            print(f"           cancel after 5000 files: returned in "
                  f"{c['cancel_latency'] * 1000:.0f} ms (cancelled={c['cancelled']})")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
