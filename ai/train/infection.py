"""ct-infection: a compact U-Net labelling ground-glass opacity and consolidation on chest CT.

The data side (slices, groups, folds, preprocessing, constants) is :mod:`ai.train.infection_data`;
its public names are re-exported here.

Evaluation is a grouped k-fold cross-validation (:func:`cross_validate`) with a fixed recipe
(fixed epochs, cosine learning-rate decay, no early stopping on the held-out fold); the
shipped model is then trained with the same recipe on every slice (:func:`train`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai.train import common
from ai.train.infection_data import (
    CITATION,
    DEFAULTS,
    HU_WINDOW,
    LABELS,
    NAME,
    OT_META,
    POSTPROCESSING,
    SIZE,
    Slice,
    assign_folds,
    estimate_window,
    group_slices,
    load_slices,
    steps_8bit,
    steps_for,
)

__all__ = [
    "CITATION",
    "DEFAULTS",
    "HU_WINDOW",
    "LABELS",
    "NAME",
    "OT_META",
    "POSTPROCESSING",
    "SIZE",
    "Slice",
    "assign_folds",
    "budget_schedule",
    "cross_validate",
    "estimate_window",
    "fit",
    "group_slices",
    "infection_dice",
    "load_slices",
    "make_loss",
    "predict_labels",
    "slice_scores",
    "steps_8bit",
    "steps_for",
    "summarise",
    "to_model_grid",
    "train",
    "write_folder",
]


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
        "version": "1.1.0",  # 1.1.0: 200 epochs (1.0.0: 100)
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
