"""Benchmark: DICOM -> NIfTI conversion and in-process loading against peers, same run.

Writes a 300-slice 512x512 CT series (int16, explicit VR little endian) into a temporary
folder, warms the page cache, then measures:

* whole-process ``radview convert`` vs ``dcm2niix -z n`` (median of several runs);
* in-process load (scan + decode into one volume) vs SimpleITK's ImageSeriesReader;
* peak memory above the interpreter's baseline (after imports), as a ratio to the
  volume's bytes.

Targets (issue 2): convert <= 1.5x dcm2niix, load faster than SimpleITK, peak <= 1.5x.
Usage: python benchmarks/convert_load.py [--slices 300] [--size 512] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = r"""
import json, sys, time
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
which, folder = sys.argv[1], sys.argv[2]
if which == "radview":
    from viewer.core.study_index import build_index, load_series
    base = rss("VmRSS:")
    t = time.perf_counter()
    vol = load_series(build_index(folder, workers=2).series[0])
    elapsed = time.perf_counter() - t
    nbytes = vol.array.nbytes
else:
    import SimpleITK as sitk
    base = rss("VmRSS:")
    t = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
    img = reader.Execute()
    elapsed = time.perf_counter() - t
    nbytes = img.GetNumberOfPixels() * img.GetSizeOfPixelComponent()
print(json.dumps({"seconds": elapsed, "peak_above_base": rss("VmHWM:") - base, "nbytes": nbytes}))
"""

CONVERT_PROBE = r"""
import sys
from viewer.cli import main
code = main(["convert", sys.argv[1], sys.argv[2]])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) * 1024, file=sys.stderr)
sys.exit(code)
"""


def write_ct(folder: Path, slices: int, size: int) -> None:
    from viewer.core.demo import chest_phantom, write_series

    hu, _ = chest_phantom(shape=(slices, size, size), spacing=(1.0, 0.7, 0.7))
    write_series(hu, folder, spacing=(1.0, 0.7, 0.7), shuffle=True)


def timed(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def probe(which: str, folder: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE, which, str(folder)],
                             check=True, capture_output=True, text=True, cwd=ROOT)
        results.append(json.loads(out.stdout))
    best = min(results, key=lambda r: r["seconds"])
    best["seconds"] = statistics.median(r["seconds"] for r in results)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the series here and keep it")
    args = ap.parse_args()
    if shutil.which("dcm2niix") is None:
        print("dcm2niix is not installed (apt-get install dcm2niix)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="radview-bench-"))
    series = args.keep or work / "ct"
    try:
        if not (series.is_dir() and any(series.iterdir())):
            t = time.perf_counter()
            write_ct(series, args.slices, args.size)
            print(f"wrote {args.slices}x{args.size}x{args.size} CT in "
                  f"{time.perf_counter() - t:.1f} s: {series}")
        for p in series.iterdir():  # warm the page cache for both tools
            p.read_bytes()
        out = work / "out"
        out.mkdir()
        radview = [sys.executable, "-m", "viewer", "convert", str(series), str(out / "r.nii")]
        dcm2niix = ["dcm2niix", "-z", "n", "-f", "d", "-o", str(out), str(series)]
        timed(radview, 1), timed(dcm2niix, 1)  # warm-up
        t_rv, t_dn = timed(radview, args.runs), timed(dcm2niix, args.runs)
        probe_cmd = [sys.executable, "-c", CONVERT_PROBE, str(series), str(out / "m.nii")]
        conv = subprocess.run(probe_cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        conv_peak = int(conv.stderr.strip().splitlines()[-1])
        ours, itk = probe("radview", series, args.runs), probe("sitk", series, args.runs)
        vol_bytes = ours["nbytes"]
        rows = [
            ("convert: radview / dcm2niix (whole process)", t_rv, t_dn, t_rv / t_dn, "<= 1.5"),
            ("load: radview / SimpleITK (in process)", ours["seconds"], itk["seconds"],
             ours["seconds"] / itk["seconds"], "< 1.0"),
        ]
        print(f"\n{'measure':<46}{'radview':>10}{'peer':>10}{'ratio':>8}  target")
        for name, a, b, r, target in rows:
            print(f"{name:<46}{a:>9.3f}s{b:>9.3f}s{r:>8.2f}  {target}")
        print(f"\nvolume bytes: {vol_bytes / 2**20:.1f} MiB")
        print(f"peak above baseline, load:    radview {ours['peak_above_base'] / vol_bytes:.2f}x "
              f"volume (SimpleITK {itk['peak_above_base'] / itk['nbytes']:.2f}x)  target <= 1.5")
        print(f"peak RSS of the convert process: {conv_peak / vol_bytes:.2f}x volume "
              "(includes the interpreter and libraries)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    np.seterr(all="ignore")
    sys.exit(main())
