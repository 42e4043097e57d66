"""Whole-volume segmentation through the AI process: time, slices/s, and Dice on a phantom.

    .venv/bin/python benchmarks/ai_segment.py [--shape K J I] [--models NAME ...] [--json]

The volume is the demo chest phantom (``viewer.core.demo.phantom``, default 300 x 512 x 512,
1.0 x 0.7 x 0.7 mm, HU, with ground-truth lungs and lesions). Each model goes through
``AIClient.segment_volume`` exactly as the viewer and ``radview segment`` call it: the volume
crosses to the AI process once through shared memory, the labels come back in another block.

Per model: the load (AI process start + for network models the TensorFlow import, sha256
check and weights; a classical model imports no TensorFlow), then the whole volume end to
end (seconds and slices/s; a model with ``within_lungs`` includes its ct-lungs run), and
Dice against the phantom's truth where the labels mean the same thing (lungs for
``ct-lungs``; ground-glass / consolidation for ``ct-infection``). Default models:
``ct-lungs`` and ``ct-infection`` when installed, and ``cxr-lungs`` (a radiograph model: its
labels mean nothing on CT, it is timed as the throughput of a 256 x 256 U-Net run slice by
slice in batches).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai.process.client import AIClient  # noqa: E402
from ai.registry import Registry  # noqa: E402
from viewer.core.demo.phantom import chest_phantom  # noqa: E402

SPACING = (1.0, 0.7, 0.7)
#: phantom labels: 1 right lung, 2 left lung, 3 ground-glass, 4 consolidation
TRUTH = {
    "right lung": lambda t: (t == 1) | ((t >= 3) & _right(t)),
    "left lung": lambda t: (t == 2) | ((t >= 3) & ~_right(t)),
    "ground-glass opacity": lambda t: t == 3,
    "consolidation": lambda t: t == 4,
}


def _right(truth: np.ndarray) -> np.ndarray:
    """Patient right = low i with the phantom's identity direction (columns run to +L)."""
    columns = np.arange(truth.shape[2]) < truth.shape[2] // 2
    return np.broadcast_to(columns, truth.shape)


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    total = int(a.sum()) + int(b.sum())
    return None if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def run_model(name: str, hu: np.ndarray, meta: dict, truth: np.ndarray) -> dict:
    registry = Registry()
    spec = registry.get(name)
    with AIClient(registry, request_timeout=1800) as client:
        t0 = time.perf_counter()
        info = client.load_model(spec)
        load_s = time.perf_counter() - t0
        messages = []
        t1 = time.perf_counter()
        labels = client.segment_volume(hu, meta, spec, progress=lambda f, m: messages.append(m))
        seconds = time.perf_counter() - t1
    scores = {}
    for label, label_name in spec.labels.items():
        if label and label_name in TRUTH:
            scores[label_name] = dice(labels == label, TRUTH[label_name](truth))
    return {
        "model": name,
        "backend": spec.backend,
        "device": info.get("device", ""),
        "batch_size": spec.batch_size if not spec.is_classical else None,
        "restricted_to": spec.lungs_model,
        "load_s": round(load_s, 2),
        "segment_s": round(seconds, 2),
        "slices_per_s": round(hu.shape[0] / seconds, 1),
        "progress_messages": len(messages),
        "dice": {k: (round(v, 4) if v is not None else None) for k, v in scores.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs=3, type=int, default=(300, 512, 512), metavar="N")
    parser.add_argument("--models", nargs="+", metavar="NAME")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    registry = Registry()
    models = args.models or [
        m for m in ("ct-lungs", "ct-infection", "cxr-lungs") if m in registry.names()
    ]
    t0 = time.perf_counter()
    hu, info = chest_phantom(tuple(args.shape), SPACING, seed=0)
    built_s = time.perf_counter() - t0
    meta = {
        "modality": "CT",
        "photometric": "MONOCHROME2",
        "spacing_mm": SPACING,
        "pixel_spacing_mm": SPACING[1:],
        "direction": np.eye(3).tolist(),
    }
    rows = [run_model(name, hu, meta, info["labels"]) for name in models]
    report = {
        "shape": list(hu.shape),
        "spacing_mm": list(SPACING),
        "phantom_s": round(built_s, 1),
        "results": rows,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    k, j, i = hu.shape
    print(
        f"phantom {k}x{j}x{i} ({SPACING[0]:g} x {SPACING[1]:g} x {SPACING[2]:g} mm), "
        f"built in {built_s:.1f} s"
    )
    for r in rows:
        extra = f", within {r['restricted_to']}" if r["restricted_to"] else ""
        print(f"\n{r['model']} ({r['backend']}, {r['device']}{extra})")
        print(
            f"  load {r['load_s']:.2f} s; volume {r['segment_s']:.2f} s = "
            f"{r['slices_per_s']:.1f} slices/s ({r['progress_messages']} progress messages)"
        )
        for name, value in r["dice"].items():
            shown = "n/a (empty)" if value is None else f"{value:.3f}"
            print(f"  Dice {name}: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
