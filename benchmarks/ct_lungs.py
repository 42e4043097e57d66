"""Benchmark: classical lung segmentation and quantification on a 300x512x512 chest phantom.

Builds the synthetic chest phantom (viewer.core.demo) at ``--slices`` x ``--size``² with
1 mm slices and 0.7 mm pixels, then measures (median of ``--runs``):

* ``ai.ct_lungs.segment_lungs`` on the HU volume (wall and process CPU seconds; the target
  is a few seconds on 2 cores), with its Dice per lung against the phantom's truth;
* ``viewer.core.quantify.quantify`` on the phantom's own label map (right/left lung,
  ground-glass, consolidation): re-run after every correction, target well under 1 s.

Usage: python benchmarks/ct_lungs.py [--slices 300] [--size 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ai.ct_lungs import segment_lungs  # noqa: E402
from viewer.core.demo.phantom import chest_phantom  # noqa: E402
from viewer.core.geometry import VolumeGeometry  # noqa: E402
from viewer.core.labelmap import LabelMap  # noqa: E402
from viewer.core.quantify import quantify  # noqa: E402

NAMES = {1: "right lung", 2: "left lung", 3: "ground-glass opacity", 4: "consolidation"}


def _timed(fn, runs: int):
    walls, cpus, result = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    spacing = (1.0, 0.7 * 512 / args.size, 0.7 * 512 / args.size)
    hu, info = chest_phantom((args.slices, args.size, args.size), spacing)
    labels = info["labels"]
    print(f"phantom {hu.shape} spacing {spacing} mm, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    wall, cpu, out = _timed(lambda: segment_lungs(hu, spacing), args.runs)
    side = np.where(np.arange(hu.shape[2]) < (hu.shape[2] - 1) / 2, 1, 2)
    truth = np.where(labels >= 3, side[None, None, :], labels)
    dice = [
        2
        * np.count_nonzero((out == v) & (truth == v))
        / (np.count_nonzero(out == v) + np.count_nonzero(truth == v))
        for v in (1, 2)
    ]
    print(f"segment_lungs  wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
          f"Dice right {dice[0]:.3f} left {dice[1]:.3f}")  # fmt: skip

    lm = LabelMap.from_names(VolumeGeometry(labels.shape, spacing), labels, NAMES)
    wall, cpu, q = _timed(lambda: quantify(lm), max(args.runs, 5))
    print(f"quantify       wall {wall:6.3f} s  cpu {cpu:6.3f} s  "
          f"lungs {q.total.size:.0f} mL, involvement {q.involvement_percent:.2f} %, "
          f"score {q.severity_score}/{q.severity_max}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
