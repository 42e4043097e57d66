"""Evaluation of the classical CT lung segmentation (:mod:`ai.ct_lungs`).

* On the synthetic chest phantom (ground truth known): Dice per lung for a few grids, seeds
  and orientations (columns flipped to the patient's right, with the matching direction).
* On real DICOM (no ground truth; a smoke run): every CT series under each PATH is
  segmented; lung volumes in mL (or areas in cm² for single slices) are printed, and with
  ``--png DIR`` an overlay PNG of a few slices per series is written for a visual check.

Usage: python -m ai.train.eval_ct_lungs [PATH ...] [--png DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ai.ct_lungs import LEFT_LUNG, RIGHT_LUNG, segment_lungs, segment_volume

#: (shape, spacing mm, seed, flip columns)
PHANTOM_CASES = [
    ((120, 512, 512), (2.5, 0.7, 0.7), 0, False),
    ((120, 512, 512), (2.5, 0.7, 0.7), 0, True),
    ((64, 512, 512), (5.0, 0.84, 0.84), 1, False),
    ((40, 360, 360), (7.5, 1.0, 1.0), 3, False),
]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 2.0 * np.count_nonzero(a & b) / total if total else 1.0


def phantom_truth(labels: np.ndarray) -> np.ndarray:
    """Right (1) / left (2) truth of the phantom: its lesions join the lung of their side."""
    ni = labels.shape[2]
    side = np.where(np.arange(ni) < (ni - 1) / 2, RIGHT_LUNG, LEFT_LUNG)
    return np.where(labels >= 3, side[None, None, :], labels).astype(np.uint8)


def evaluate_phantom() -> list[dict]:
    from viewer.core.demo.phantom import chest_phantom

    rows = []
    for shape, spacing, seed, flip in PHANTOM_CASES:
        hu, info = chest_phantom(shape, spacing, seed=seed)
        truth = phantom_truth(info["labels"])
        direction = np.eye(3)
        if flip:
            hu, truth = hu[:, :, ::-1], truth[:, :, ::-1]
            direction = np.diag([-1.0, 1.0, 1.0])
        t = time.perf_counter()
        out = segment_lungs(hu, spacing, direction=direction)
        seconds = time.perf_counter() - t
        ml = float(np.prod(spacing)) / 1000.0
        row = {
            "shape": list(shape), "spacing": list(spacing), "seed": seed, "flipped": flip,
            "dice_right": round(dice(out == RIGHT_LUNG, truth == RIGHT_LUNG), 4),
            "dice_left": round(dice(out == LEFT_LUNG, truth == LEFT_LUNG), 4),
            "ml_right": round(np.count_nonzero(out == RIGHT_LUNG) * ml, 1),
            "ml_left": round(np.count_nonzero(out == LEFT_LUNG) * ml, 1),
            "truth_ml_right": round(np.count_nonzero(truth == RIGHT_LUNG) * ml, 1),
            "truth_ml_left": round(np.count_nonzero(truth == LEFT_LUNG) * ml, 1),
            "seconds": round(seconds, 2),
        }  # fmt: skip
        rows.append(row)
        print(f"phantom {shape} {spacing}{' flipped' if flip else ''}: Dice right "
              f"{row['dice_right']:.3f} left {row['dice_left']:.3f}; mL {row['ml_right']} / "
              f"{row['truth_ml_right']} and {row['ml_left']} / {row['truth_ml_left']} "
              f"({seconds:.1f} s)")  # fmt: skip
    return rows


def evaluate_dicom(paths: list[str], png_dir: Path | None) -> list[dict]:
    from viewer.core.export.label_files import write_overlay_png
    from viewer.core.study_index import build_index, load_series

    rows = []
    for path in paths:
        for entry in build_index(path).series:
            if entry.modality != "CT" or entry.status.startswith("error"):
                continue
            volume = load_series(entry)
            g = volume.geometry
            row: dict = {"source": entry.files[0] if len(entry.files) == 1 else path,
                         "shape": list(g.shape)}  # fmt: skip
            t = time.perf_counter()
            try:
                lm = segment_volume(volume)
            except ValueError as exc:
                row["error"] = str(exc)
                print(f"{row['source']}: {exc}")
                rows.append(row)
                continue
            row["seconds"] = round(time.perf_counter() - t, 2)
            counts = lm.counts()
            if g.shape[0] == 1:
                unit, per = "cm2", g.spacing[1] * g.spacing[2] / 100.0
            else:
                unit, per = "mL", g.voxel_volume_ml
            for label, name in ((RIGHT_LUNG, "right"), (LEFT_LUNG, "left")):
                row[f"{name}_{unit}"] = round(counts.get(label, 0) * per, 1)
            rows.append(row)
            print(f"{row['source']} {g.shape}: right {row[f'right_{unit}']} {unit}, left "
                  f"{row[f'left_{unit}']} {unit} ({row['seconds']} s)")  # fmt: skip
            if png_dir is not None:
                png_dir.mkdir(parents=True, exist_ok=True)
                stem = f"{len(rows):03d}"
                lung_k = np.flatnonzero(lm.labels.any(axis=(1, 2)))
                picks = np.unique(lung_k[np.linspace(0, len(lung_k) - 1, 4).astype(int)])
                for k in picks:
                    write_overlay_png(volume, lm, png_dir / f"{stem}_k{k:03d}.png", int(k),
                                      window=(-600, 1500))  # fmt: skip
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="DICOM folders or files (real CT)")
    ap.add_argument("--png", type=Path, help="folder for overlay PNGs of the real CT")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--no-phantom", action="store_true")
    args = ap.parse_args(argv)
    result = {
        "phantom": [] if args.no_phantom else evaluate_phantom(),
        "dicom": evaluate_dicom(args.paths, args.png),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
