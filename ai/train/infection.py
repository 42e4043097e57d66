"""ct-infection: a compact U-Net labelling ground-glass opacity and consolidation on chest CT.

Data: ``ct-infection/images/N.jpg`` (8-bit, lung-windowed, stored transposed) and
``masks/N.png`` (0 background, 1 ground-glass opacity, 2 consolidation). :func:`load_slices`
transposes both back, so arrays are (rows, cols) of an axial slice displayed radiologically
(anterior up, patient's left on the right of the image), like a DICOM slice.

Two preprocessing lists with the same geometry feed the model:

* :func:`steps_for` (model.json): ``window`` HU -> 0..1 with the lung window the dataset used
  (:data:`HU_WINDOW`), then ``letterbox`` to the input size. For real CT in HU.
* :func:`steps_8bit`: ``window`` 128/256 (= x / 255 on 0..255 values), then the same
  ``letterbox``: the training images (and other 8-bit pictures) are already windowed.

Evaluation is a grouped k-fold cross-validation (:func:`cross_validate`) with a fixed recipe
(fixed epochs, cosine learning-rate decay, no early stopping on the held-out fold); the
shipped model is then trained with the same recipe on every slice (:func:`train`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ai.train import common

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
    "epochs": 100,
    "batch": 2,
    "lr": 2e-3,
    "class_weights": [1.0, 2.0, 3.0],
    "max_minutes": 11.0,
    "threads": 2,
    "final_max_minutes": 14.0,
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


def to_model_grid(slices: list[Slice], size: int):
    """x (N, size, size, 1) float32 in 0..1 and one-hot y (N, size, size, 3) via the 8-bit
    pipeline; masks follow the same letterbox (one-hot channels resized linearly, argmax)."""
    from ai import transforms

    pipeline = transforms.build_pipeline(steps_8bit(size))
    geometry = transforms.build_pipeline(steps_8bit(size)[-1:])
    xs, ys = [], []
    for s in slices:
        x, _ = pipeline.forward(s.image, OT_META)
        onehot = [geometry.forward((s.mask == c).astype(np.float32), OT_META)[0] for c in range(3)]
        stack = np.stack(onehot, -1)
        label = np.argmax(stack, -1)
        label[stack.sum(-1) < 0.5] = 0  # letterbox padding
        xs.append(x)
        ys.append(np.eye(3, dtype=np.float32)[label])
    return np.stack(xs)[..., None].astype(np.float32), np.stack(ys)


def make_loss(class_weights):
    """Class-weighted categorical cross-entropy + (1 - mean soft Dice of channels 1 and 2)."""
    import keras.ops as K

    w = K.convert_to_tensor(np.asarray(class_weights, dtype=np.float32))

    def loss(y_true, y_pred):
        p = K.clip(y_pred, 1e-7, 1.0)
        ce = -K.mean(K.sum(y_true * K.log(p) * w, axis=-1))
        dices = []
        for c in (1, 2):
            t, q = y_true[..., c], y_pred[..., c]
            dices.append((2.0 * K.sum(t * q) + 1.0) / (K.sum(t) + K.sum(q) + 1.0))
        return ce + 1.0 - 0.5 * (dices[0] + dices[1])

    return loss


def infection_dice(y_true, y_pred):
    """Hard Dice of GGO and consolidation together (argmax != background), over the batch."""
    import keras.ops as K

    t = K.cast(K.argmax(y_true, axis=-1) > 0, "float32")
    p = K.cast(K.argmax(y_pred, axis=-1) > 0, "float32")
    return (2.0 * K.sum(t * p) + 1e-6) / (K.sum(t) + K.sum(p) + 1e-6)


def budget_schedule(lr: float, epochs: int, max_minutes: float, floor: float = 0.05):
    """Cosine learning-rate decay over whichever runs out first, ``epochs`` or
    ``max_minutes`` of wall time; training stops at the end of that budget.

    Progress p = max(epoch / epochs, elapsed / max_minutes); lr = lr * (floor + (1 - floor)
    * (1 + cos(pi * p)) / 2). On a shared CPU every run still ends with a fully decayed rate.
    """
    import math
    import time

    import keras

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def _progress(self, epoch):
            elapsed = (time.monotonic() - self.start) / 60
            return min(1.0, max(epoch / epochs, elapsed / max_minutes))

        def on_epoch_begin(self, epoch, logs=None):
            p = self._progress(epoch)
            self.model.optimizer.learning_rate.assign(
                lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))
            )

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["lr"] = float(self.model.optimizer.learning_rate.numpy())
            if self._progress(epoch + 1) >= 1.0:
                self.model.stop_training = True

    return Budget()


def fit(x, y, cfg: dict, validation=None, log=print):
    """Train a fresh U-Net on (x, y) with the fixed recipe; returns (model, build, record).

    Recipe: Adam with cosine decay over the budget (:func:`budget_schedule`), augmentation
    (horizontal flip, rotation ±12°, shift ±6 %, zoom -15..+35 % (zoom-out covers uncropped
    DICOM fields of view),
    gamma/contrast/brightness, Gaussian noise); no early stopping on a validation set.
    """
    import time

    keras = common.setup_tf(cfg["seed"], cfg["threads"])
    import tensorflow as tf

    from ai.train.augment import make_augmenter
    from ai.train.models import unet

    size = cfg["size"]

    def build():
        return unet(
            (size, size, 1),
            base=cfg["base"],
            depth=cfg["depth"],
            n_classes=3,
            name="ct_infection_unet",
        )

    augment = make_augmenter(
        cfg["seed"],
        rotation_deg=12,
        shift=0.06,
        zoom=(-0.15, 0.35),
        gamma=0.3,
        contrast=0.2,
        brightness=0.06,
        noise=0.03,
        flip=True,
    )
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=cfg["seed"], reshuffle_each_iteration=True)
        .batch(cfg["batch"])
        .map(augment)
        .prefetch(2)
    )
    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(cfg["lr"]),
        loss=make_loss(cfg["class_weights"]),
        metrics=[infection_dice],
    )
    history = keras.callbacks.History()
    start = time.monotonic()
    model.fit(
        ds,
        validation_data=validation,
        epochs=cfg["epochs"],
        verbose=2,
        callbacks=[budget_schedule(cfg["lr"], cfg["epochs"], cfg["max_minutes"]), history],
    )
    minutes = (time.monotonic() - start) / 60
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    record = {
        "history": hist,
        "epochs_run": len(hist["loss"]),
        "train_minutes": round(minutes, 1),
        "params": int(model.count_params()),
    }
    log(f"trained {record['epochs_run']} epochs in {minutes:.1f} min")
    return model, build, record


def predict_labels(model, image: np.ndarray, size: int) -> np.ndarray:
    """Label map (rows, cols) 0/1/2 of one 8-bit slice: softmax mapped back by the inverse
    letterbox onto the slice's own grid, then argmax."""
    from ai import transforms

    pipeline = transforms.build_pipeline(steps_8bit(size))
    x, record = pipeline.forward(image, OT_META)
    prob = np.asarray(model(x[None, ..., None], training=False))[0]
    back = np.stack([pipeline.inverse_map(prob[..., c], record) for c in range(3)])
    return np.argmax(back, axis=0).astype(np.uint8)


def slice_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per-slice Dice of GGO (1), consolidation (2) and any infection (1 or 2); a class
    absent from the reference gives None (its false-positive pixels are counted instead)."""
    from ai.train.stats import dice

    out = {}
    for key, sel in (("ggo", (1,)), ("consolidation", (2,)), ("infection", (1, 2))):
        t, p = np.isin(truth, sel), np.isin(pred, sel)
        out[key] = dice(p, t) if t.any() else None
        out[f"{key}_fp_pixels"] = int((p & ~t).sum())
        out[f"{key}_inter"], out[f"{key}_sum"] = int((p & t).sum()), int(p.sum() + t.sum())
    return out


def cross_validate(data_dir, out_dir, log=print, **options) -> dict:
    """Grouped k-fold CV with the fixed recipe; writes ``cv.json`` (config, folds, per-slice
    scores) and ``cv_predictions.npz`` (held-out label maps) into ``out_dir``; returns cv."""
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slices = load_slices(data_dir)
    groups = group_slices(slices, min_corr=cfg["group_min_corr"])
    if len(set(groups)) < cfg["folds"]:
        raise ValueError(
            f"only {len(set(groups))} patient groups: cannot make {cfg['folds']} folds"
        )
    folds = assign_folds(groups, cfg["folds"], cfg["seed"])
    x, y = to_model_grid(slices, cfg["size"])
    scores, records, preds = [None] * len(slices), [], {}
    for k in range(cfg["folds"]):
        test = np.array([f == k for f in folds])
        log(f"fold {k + 1}/{cfg['folds']}: {int((~test).sum())} train, {int(test.sum())} test")
        model, _, rec = fit(x[~test], y[~test], {**cfg, "seed": cfg["seed"] + k}, log=log)
        for i in np.flatnonzero(test):
            pred = predict_labels(model, slices[i].image, cfg["size"])
            preds[slices[i].stem] = pred
            scores[i] = {
                "stem": slices[i].stem,
                "fold": k,
                "group": groups[i],
                **slice_scores(pred, slices[i].mask),
            }
        rec.pop("history")
        records.append(
            {"fold": k, **rec, **summarise([s for s in scores if s and s["fold"] == k], n_boot=0)}
        )
        log(f"fold {k + 1}: {records[-1]['mean_dice']}")
    cv = {
        "config": cfg,
        "n_groups": len(set(groups)),
        "folds": records,
        "slices": scores,
        "date": __import__("datetime").date.today().isoformat(),
    }
    common.write_json(out / "cv.json", cv)
    np.savez_compressed(out / "cv_predictions.npz", **preds)
    return cv


def summarise(scores: list[dict], n_boot: int = 2000) -> dict:
    """Mean per-slice Dice (slices where the class is present) of GGO, consolidation, their
    mean and any infection, plus pooled Dice; with ``n_boot`` > 0, [value, low, high] 95%
    bootstrap intervals resampling patient groups."""
    from ai.train.stats import bootstrap_ci

    groups = [s["group"] for s in scores]

    def mean_of(key):
        return lambda ix: float(
            np.mean([v for v in (scores[i][key] for i in ix) if v is not None] or [np.nan])
        )

    def both(ix):
        return 0.5 * (mean_of("ggo")(ix) + mean_of("consolidation")(ix))

    def pooled(key):
        return lambda ix: float(
            2
            * sum(scores[i][f"{key}_inter"] for i in ix)
            / max(1, sum(scores[i][f"{key}_sum"] for i in ix))
        )

    stats = {
        "ggo_dice": mean_of("ggo"),
        "consolidation_dice": mean_of("consolidation"),
        "mean_dice": both,
        "infection_dice": mean_of("infection"),
        "ggo_pooled_dice": pooled("ggo"),
        "consolidation_pooled_dice": pooled("consolidation"),
    }
    out = {}
    for name, fn in stats.items():
        if n_boot:
            out[name] = list(bootstrap_ci(fn, len(scores), groups, n_boot=n_boot))
        else:
            out[name] = round(fn(np.arange(len(scores))), 4)
    out["n_slices"] = len(scores)
    out["n_with"] = {k: sum(s[k] is not None for s in scores) for k in ("ggo", "consolidation")}
    return out


def train(
    data_dir, out_dir, cv_dir, command: str | None = None, run_cv: bool = True, log=print, **options
) -> dict:
    """Cross-validate (unless ``run_cv`` is False: ``cv_dir/cv.json`` is reused, and must have
    been made with the same recipe), train the shipped model on every slice with the same
    recipe, write ``model.keras``, ``history.json``, ``model.json``, the card and plots."""
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    cv_dir, out = Path(cv_dir), Path(out_dir)
    if run_cv:
        cross_validate(data_dir, cv_dir, log=log, **cfg)
    if not (cv_dir / "cv.json").is_file():
        raise FileNotFoundError(f"{cv_dir / 'cv.json'}: no cross-validation results (run with CV)")
    cv = common.read_json(cv_dir / "cv.json")
    recipe = ("size", "base", "depth", "epochs", "batch", "lr", "class_weights")
    differ = [k for k in recipe if cv["config"].get(k) != cfg[k]]
    if differ:
        raise ValueError(f"cv.json was made with other settings ({', '.join(differ)}): rerun CV")
    slices = load_slices(data_dir)
    x, y = to_model_grid(slices, cfg["size"])
    log(f"{NAME}: final model on all {len(slices)} slices")
    model, build, rec = fit(x, y, {**cfg, "max_minutes": cfg["final_max_minutes"]}, log=log)
    out.mkdir(parents=True, exist_ok=True)
    common.save_inference_model(model, build, out / "model.keras")
    import datetime

    info = {
        "command": command,
        "date": datetime.date.today().isoformat(),
        "config": cfg,
        "n_train": len(slices),
        **rec,
    }
    common.write_json(out / "history.json", info)
    write_folder(out, data_dir, cv_dir)
    return info


def write_folder(model_dir, data_dir, cv_dir, n_boot: int = 2000) -> dict:
    """model.json (sha256, CV metrics with 95% CIs), MODEL_CARD.md and plots of a trained
    ``model_dir`` (holding model.keras and history.json) from ``cv_dir/cv.json``."""
    import keras

    from ai.train import card, infection_card

    model_dir, cv_dir = Path(model_dir), Path(cv_dir)
    info = common.read_json(model_dir / "history.json")
    cv = common.read_json(cv_dir / "cv.json")
    cfg = info["config"]
    scores = cv["slices"]
    overall = summarise(scores, n_boot=n_boot)
    window = estimate_window(data_dir)
    slices = load_slices(data_dir)
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    infection_card.plots(model_dir, info, cv, slices, cv_dir, model, data_dir, cfg["size"])
    spec = {
        "format": 1,
        "name": NAME,
        "version": "1.0.0",
        "task": "segmentation",
        "modalities": ["CT", "OT"],
        "input": {"height": cfg["size"], "width": cfg["size"], "channels": 1},
        "preprocessing": steps_for(cfg["size"]),
        "labels": dict(LABELS),
        "postprocessing": [dict(POSTPROCESSING)],
        "weights": {"file": "model.keras", "sha256": ""},
        "training": {
            "data": f"{CITATION} All {info['n_train']} slices in the shipped model.",
            "split": infection_card.split_text(cv),
            "command": info.get("command") or "python -m ai train infection --data ../shared/data",
            "date": info["date"],
            "device": "CPU",
            "train_minutes": info["train_minutes"],
            "epochs_run": info["epochs_run"],
            "config": cfg,
            "hu_window_estimate": window,
        },
        "metrics": {
            "cross_validation": overall,
            "folds": cv["folds"],
            "evaluated": cv["date"],
            "n_boot": n_boot,
            "note": infection_card.METRICS_NOTE,
        },
        "intended_use": card.INTENDED_USE + " Marks ground-glass opacity and consolidation on "
        "axial chest CT slices for research on COVID-19 pneumonia.",
        "card": "MODEL_CARD.md",
    }
    spec = card.write_spec(model_dir, spec)
    infection_card.write(model_dir, spec, info, cv, overall)
    return spec
