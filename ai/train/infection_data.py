"""ct-infection data: the slices, their patient groups and folds, preprocessing and constants.

Data: ``ct-infection/images/N.jpg`` (8-bit, lung-windowed, stored transposed) and
``masks/N.png`` (0 background, 1 ground-glass opacity, 2 consolidation). :func:`load_slices`
transposes both back, so arrays are (rows, cols) of an axial slice displayed radiologically
(anterior up, patient's left on the right of the image), like a DICOM slice.

Two preprocessing lists with the same geometry feed the model:

* :func:`steps_for` (model.json): ``window`` HU -> 0..1 with the lung window the dataset used
  (:data:`HU_WINDOW`), then ``letterbox`` to the input size. For real CT in HU.
* :func:`steps_8bit`: ``window`` 128/256 (= x / 255 on 0..255 values), then the same
  ``letterbox``: the training images (and other 8-bit pictures) are already windowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "ct-infection"
LABELS = {"0": "background", "1": "ground-glass opacity", "2": "consolidation"}
#: HU window (centre, width) that maps HU to the 8-bit range of the training images
HU_WINDOW = (-520.0, 1250.0)
SIZE = 192
DEFAULTS = {
    "seed": 0,
    "size": SIZE,
    "base": 8,
    "depth": 4,
    "epochs": 200,
    "batch": 2,
    "lr": 2e-3,
    "class_weights": [1.0, 2.0, 3.0],
    "max_minutes": 40.0,
    "threads": 2,
    "final_max_minutes": 45.0,
    "folds": 5,
    "group_min_corr": 0.8,
}
#: whole-volume postprocessing: keep findings in the ct-lungs mask grown by 10 mm and only
#: where they touch it (peripheral consolidation that a threshold lung mask misses is kept,
#: false positives in the arms or the abdomen wall are dropped; on the CT phantom 10 mm kept
#: every lesion while 20 mm let in more chest wall); CT in HU only
POSTPROCESSING = {"op": "within_lungs", "model": "ct-lungs", "dilate_mm": 10.0, "touching": True}
#: metadata handed to the pipeline for the 8-bit training images
OT_META = {"photometric": "MONOCHROME2", "modality": "OT"}

CITATION = (
    "MedSeg COVID-19 CT segmentation data (medicalsegmentation.com, radiologist annotations), "
    "as redistributed in the Inf-Net repository (D.-P. Fan et al., Inf-Net: Automatic COVID-19 "
    "Lung Infection Segmentation from CT Images, IEEE TMI 2020; GitHub DengPingFan/Inf-Net, "
    "Dataset/TrainingSet/MultiClassInfection-Train): 50 axial chest CT slices, 8-bit, "
    "lung-windowed, with masks 0 background, 1 ground-glass opacity, 2 consolidation. "
    "Non-commercial use."
)


def _mode(values: np.ndarray, low: float, high: float, bin_width: float) -> float:
    """Centre of the fullest histogram bin of ``values`` within [low, high)."""
    v = values[(values >= low) & (values < high)]
    h, e = np.histogram(v, bins=int(round((high - low) / bin_width)), range=(low, high))
    k = int(np.argmax(h))
    return float(e[k] + e[k + 1]) / 2


def estimate_window(data_dir) -> dict:
    """Estimate the HU window behind the 8-bit training images (reproduces :data:`HU_WINDOW`).

    Two landmarks: the aerated-lung mode (8-bit 5..140; HU -980..-400) and the soft-tissue mode
    (8-bit 150..250, mostly fat; HU -200..150). Their HU values are the medians over the real
    ``ct-slices`` DICOMs, their 8-bit values are taken per training image; each image then
    gives the linear window (centre, width) through both points. Returns the median and the
    10/25/75/90th percentiles over the images (they vary: the slices come from many sources).
    """
    import pydicom

    hu_lung, hu_tissue = [], []
    for path in sorted(Path(data_dir, "ct-slices").rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path)
            hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        except Exception:  # noqa: BLE001 - not an image DICOM file: skip it
            continue
        hu_lung.append(_mode(hu, -980, -400, 10))
        hu_tissue.append(_mode(hu, -200, 150, 10))
    if not hu_lung:
        raise FileNotFoundError(f"no DICOM slices under {Path(data_dir, 'ct-slices')}")
    lung, tissue = float(np.median(hu_lung)), float(np.median(hu_tissue))
    centres, widths = [], []
    for s in load_slices(data_dir):
        v_lung, v_tissue = _mode(s.image, 5, 140, 4), _mode(s.image, 150, 250, 4)
        width = (tissue - lung) * 255.0 / (v_tissue - v_lung)
        widths.append(width)
        centres.append(lung - v_lung / 255.0 * width + width / 2)
    q = [10, 25, 50, 75, 90]

    def pct(values):
        return dict(zip(map(str, q), np.percentile(values, q).round(0).tolist()))

    return {
        "hu_lung_mode": lung,
        "hu_tissue_mode": tissue,
        "n_dicom": len(hu_lung),
        "centre_percentiles": pct(centres),
        "width_percentiles": pct(widths),
    }


def steps_for(size: int = SIZE, window: tuple[float, float] = HU_WINDOW) -> list[dict]:
    """The model.json preprocessing: CT in HU gets the lung window to 0..1; 8-bit pictures
    of already-windowed slices (PNG/JPEG, modality OT, like the training images) get x / 255;
    then letterbox."""
    return [
        {"op": "window", "center": window[0], "width": window[1], "modalities": ["CT"]},
        {"op": "window", "center": 128, "width": 256, "modalities": ["OT"]},
        {"op": "letterbox", "height": size, "width": size},
    ]


def steps_8bit(size: int = SIZE) -> list[dict]:
    """Preprocessing for 8-bit pictures already windowed (the training images): x / 255."""
    return [
        {"op": "window", "center": 128, "width": 256},
        {"op": "letterbox", "height": size, "width": size},
    ]


@dataclass
class Slice:
    """One training slice: its file stem, 8-bit image and label mask, display orientation."""

    stem: str
    image: np.ndarray  # float32 (rows, cols), 0..255
    mask: np.ndarray  # uint8 (rows, cols), 0/1/2


def load_slices(data_dir) -> list[Slice]:
    """Every ``ct-infection`` slice, sorted by number, transposed to radiological display."""
    from PIL import Image

    root = Path(data_dir) / "ct-infection"
    paths = sorted((root / "images").glob("*.jpg"), key=lambda p: int(p.stem))
    if not paths:
        raise FileNotFoundError(f"no ct-infection images in {root / 'images'}")
    out = []
    for path in paths:
        mask_path = root / "masks" / f"{path.stem}.png"
        with Image.open(path) as im:
            image = np.asarray(im.convert("L"), dtype=np.float32).T
        with Image.open(mask_path) as im:
            mask = np.asarray(im, dtype=np.uint8).T
        if mask.shape != image.shape or mask.max() > 2:
            raise ValueError(f"{mask_path}: mask does not match its image or has labels > 2")
        out.append(Slice(path.stem, np.ascontiguousarray(image), np.ascontiguousarray(mask)))
    return out


def group_slices(slices: list[Slice], tol: int = 3, min_corr: float = 0.8) -> list[int]:
    """Heuristic patient groups (the dataset carries no patient ids), linked transitively.

    Two slices are linked when their image sizes agree within ``tol`` pixels on both axes
    (the source crops one scan the same way) or when their 48x48 thumbnails, standardised,
    correlate at ``min_corr`` or more (neighbouring slices of one scan look alike; unrelated
    chests correlate at 0.6-0.78 on this set). It cannot find every same-patient pair.
    """
    from PIL import Image

    n = len(slices)
    thumbs = []
    for s in slices:
        a = np.asarray(
            Image.fromarray(np.clip(s.image, 0, 255).astype(np.uint8)).resize((48, 48)),
            dtype=np.float64,
        )
        thumbs.append(((a - a.mean()) / (a.std() + 1e-9)).ravel())
    corr = np.array(thumbs) @ np.array(thumbs).T / thumbs[0].size
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            a, b = slices[i].image.shape, slices[j].image.shape
            same_crop = abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol
            if same_crop or corr[i, j] >= min_corr:
                parent[find(i)] = find(j)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(i), len(roots)) for i in range(n)]


def assign_folds(groups: list[int], k: int, seed: int = 0) -> list[int]:
    """Fold (0..k-1) of each slice: whole groups, largest first, to the smallest fold."""
    rng = np.random.default_rng(seed)
    ids = list(dict.fromkeys(groups))
    rng.shuffle(ids)
    ids.sort(key=lambda g: -groups.count(g))
    sizes, fold_of = [0] * k, {}
    for g in ids:
        f = int(np.argmin(sizes))
        fold_of[g] = f
        sizes[f] += groups.count(g)
    return [fold_of[g] for g in groups]
