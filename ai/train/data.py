"""The chest radiograph collection (../shared/data layout) read into preprocessed arrays.

Layout (see the data README): `cxr/labels.csv` with `image` paths relative to `cxr/`,
`cxr-lung-masks/<stem>.png` binary masks (0/255) with the same stem and size as the image.
Preprocessing always goes through `ai.transforms` with the model's own `preprocessing` list, so
training, evaluation and the viewer's inference apply exactly the same steps.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ai import transforms

#: metadata handed to the pipeline for these 8-bit images (bright bone, no DICOM header)
CXR_META = {"photometric": "MONOCHROME2", "modality": "OT"}

#: source citation and licences of the data, written into model cards
CXR_CITATION = (
    "COVID-19 image data collection, J. P. Cohen, P. Morrison, L. Dao, K. Roth, T. Q. Duong, "
    "M. Ghassemi (arXiv:2006.11988; GitHub ieee8023/covid-chestxray-dataset, snapshot of a fork "
    "dated 2020-06-27), frontal views (PA, AP, AP supine), converted to 8-bit grayscale, long "
    "side at most 1024 px. Licences are per image: CC BY, CC BY-NC-SA, CC BY-NC-ND, or unknown."
)
MASK_CITATION = (
    "Lung masks: V7 Labs lung annotations of the same collection, as shipped in the PyPI package "
    "torchxrayvision 1.5.7 (Apache-2.0 package)."
)


@dataclass
class Item:
    """One radiograph: its labels.csv row, image file and (optional) lung mask file."""

    row: dict[str, str]
    image_path: Path
    mask_path: Path | None

    @property
    def stem(self) -> str:
        return self.image_path.stem


def read_items(data_dir: str | Path) -> list[Item]:
    """All rows of `cxr/labels.csv` in file order, with their mask path where one exists."""
    root = Path(data_dir)
    mask_dir = root / "cxr-lung-masks"
    items = []
    with open(root / "cxr" / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            image = root / "cxr" / row["image"]
            mask = mask_dir / f"{image.stem}.png"
            items.append(Item(dict(row), image, mask if mask.exists() else None))
    return items


def load_gray(path: Path) -> np.ndarray:
    """An 8-bit image file as float32 (rows, cols), colour converted to luminance."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


def preprocess(items: Sequence[Item], steps: Sequence[Mapping], context: Mapping | None = None,
               with_masks: bool = False, progress: Callable[[int, int], None] | None = None):
    """Run the model's pipeline on each image; returns (x (N, H, W, 1), masks or None, records).

    With `with_masks`, each lung mask is carried through the same geometry: the pipeline's
    final letterbox/resize is applied to the 0/1 mask (linear) and thresholded at 0.5.
    """
    pipeline = transforms.build_pipeline(steps, context)
    geometry = transforms.build_pipeline([s for s in steps if s["op"] in ("letterbox", "resize")])
    xs, ms, records = [], [], []
    for n, item in enumerate(items):
        x, record = pipeline.forward(load_gray(item.image_path), CXR_META)
        xs.append(x)
        records.append(record)
        if with_masks:
            mask = load_gray(item.mask_path) > 127
            m, _ = geometry.forward(mask.astype(np.float32), CXR_META)
            ms.append(m > 0.5)
        if progress:
            progress(n + 1, len(items))
    x = np.stack(xs)[..., None].astype(np.float32)
    return x, (np.stack(ms).astype(np.uint8) if with_masks else None), records
