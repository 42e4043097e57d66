"""Benchmark: brush stroke latency on a 300x512x512 CT label map (issue 5).

Builds a 300x512x512 int16 volume (spacing 1.0 x 0.7 x 0.7 mm) and a uint8 label map with
an undo stack, connects a listener to ``labelmap.changed`` that copies the changed box (what
a view does to re-upload it), then drags brushes along a zig-zag on one slice and times each
``Brush.move`` (edit computation, undo record, label write and the changed emission):

* 5 mm and 20 mm discs on an axial 512x512 slice, normal drag (4 px between mouse events);
* 20 mm disc, fast drag (25 px between events: each move paints a long capsule; a third
  of the moves);
* 20 mm threshold brush (-1000..-300 HU), 20 mm disc on a coronal (300x512) slice;
* 5 mm and 20 mm 3D spheres.

Prints median and 95th percentile ms per move and the ratio of the p95 to the 16 ms goal
("Brush stroke update on a 512^2 slice <16 ms"), then the undo/redo time of the whole
20 mm stroke and its bytes in the undo stack.
Usage: python benchmarks/brush_stroke.py [--moves 300] [--slices 300] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viewer.core.editing import Brush  # noqa: E402
from viewer.core.geometry import VolumeGeometry  # noqa: E402
from viewer.core.history import UndoStack  # noqa: E402
from viewer.core.labelmap import LabelMap, bbox_slices  # noqa: E402

GOAL_MS = 16.0
SPACING = (1.0, 0.7, 0.7)


def raster(plane: tuple[int, int], moves: int, step_px: float, gap: int = 64) -> list:
    """Points ``step_px`` apart on a zig-zag over a plane of ``plane`` (rows, columns), rows
    ``gap`` px apart and 40 px from the edges: a drag that keeps reaching fresh voxels."""
    margin = 40
    row, col, direction, points = float(margin), float(margin), 1.0, []
    for _ in range(moves + 1):
        points.append((row, col))
        col += direction * step_px
        if not margin <= col <= plane[1] - margin:
            col = min(max(col, margin), plane[1] - margin)
            direction = -direction
            row += gap
            if row > plane[0] - margin:
                row = margin + gap / 2
    return points


def stroke(brush: Brush, axis: int, index: int, points) -> list[float]:
    """Press at the first point, time each move, release; ms per move."""

    def kji(p):
        return tuple(np.insert(np.asarray(p, dtype=float), axis, index))

    times = []
    brush.press(kji(points[0]))
    for p in points[1:]:
        t = time.perf_counter()
        brush.move(kji(p))
        times.append((time.perf_counter() - t) * 1000.0)
    brush.release()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    shape = (args.slices, args.size, args.size)

    t = time.perf_counter()
    rng = np.random.default_rng(0)
    image = rng.integers(-1000, 100, size=shape, dtype=np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[:, : args.size // 2] = 1  # half the volume already "lung": brushes overwrite it
    lm = LabelMap.from_names(
        VolumeGeometry(shape, SPACING), labels, {1: "lung", 2: "consolidation"}
    )
    stack = UndoStack(lm)
    uploaded = [0]

    def reupload(bbox):  # a view copies the changed region out for its texture
        uploaded[0] += lm.labels[bbox_slices(bbox)].copy().size

    lm.changed.connect(reupload)
    print(f"volume {shape} int16 + uint8 labels built in {time.perf_counter() - t:.1f} s")

    n = shape[0]
    cases = [  # name, brush settings, axis, slice index, step px (each on fresh voxels)
        ("disc 5 mm, axial", dict(radius_mm=5.0), 0, n * 2 // 10, 4.0),
        ("disc 20 mm, axial", dict(radius_mm=20.0), 0, n * 3 // 10, 4.0),
        ("disc 20 mm, axial, fast drag", dict(radius_mm=20.0), 0, n * 4 // 10, 25.0),
        ("threshold disc 20 mm, axial", dict(radius_mm=20.0, hu_range=(-1000, -300)), 0,
         n * 5 // 10, 4.0),
        ("disc 20 mm, coronal", dict(radius_mm=20.0), 1, shape[1] * 8 // 10, 4.0),
        ("sphere 5 mm", dict(radius_mm=5.0, sphere=True), 0, n * 6 // 10, 4.0),
        ("sphere 20 mm", dict(radius_mm=20.0, sphere=True), 0, n * 8 // 10, 4.0),
    ]  # fmt: skip
    warm = Brush(lm, stack, label=2, radius_mm=10.0)
    stroke(warm, 0, 10, raster(shape[1:], 20, 4.0))  # warm-up (numpy, caches)

    print(f"\n{'stroke':<30}{'median':>9}{'p95':>9}{'max':>9}{'voxels/move':>13}  p95/16ms")
    undo_case = None
    for name, settings, axis, index, step in cases:
        brush = Brush(lm, stack, label=2, axis=axis, image=image, **settings)
        before = int(np.count_nonzero(lm.labels == 2))
        plane = tuple(n for d, n in enumerate(shape) if d != axis)
        moves = args.moves if step < 10 else args.moves // 3
        points = raster(plane, moves, step)
        held = stack.nbytes
        times = stroke(brush, axis, index, points)
        p95 = float(np.percentile(times, 95))
        painted = (int(np.count_nonzero(lm.labels == 2)) - before) / len(times)
        print(
            f"{name:<30}{statistics.median(times):>7.2f}ms{p95:>7.2f}ms{max(times):>7.2f}ms"
            f"{painted:>13.0f}  {p95 / GOAL_MS:.3f}"
        )
        if name == "disc 20 mm, axial":
            undo_case = stack.nbytes - held
            t = time.perf_counter()
            stack.undo()
            t_undo = (time.perf_counter() - t) * 1000.0
            t = time.perf_counter()
            stack.redo()
            t_redo = (time.perf_counter() - t) * 1000.0

    nbytes = undo_case
    print(
        f"\nundo of the whole 20 mm axial stroke ({args.moves} moves): {t_undo:.2f} ms, "
        f"redo {t_redo:.2f} ms"
    )
    print(
        f"that stroke holds {nbytes / 1024:.0f} KiB in the undo stack "
        f"(label map: {lm.labels.nbytes / 2**20:.0f} MiB)"
    )
    print(f"goal: {GOAL_MS:.0f} ms per stroke update on a 512x512 slice (ratio < 1 meets it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
