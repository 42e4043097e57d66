"""cxr-covid: a compact CAM-capable CNN, COVID-19 vs other findings, on lung-cropped input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ai.train import common
from ai.train.data import read_items
from ai.train.split import grouped_split, split_text

NAME = "cxr-covid"
SIZE = 224
CLASSES = ["covid", "other"]
POSITIVE = "covid"
LUNG_MODEL = "cxr-lungs"


def steps_for(size: int, lung_mask: dict | None = None) -> list[dict]:
    """The model.json preprocessing list for a size x size input.

    ``lung_mask`` (training option ``--set lung_mask={"dilate": 0.02}``; default None = the
    shipped pipeline): parameters of a ``lung_mask`` step inserted before ``lung_crop``.
    """
    mask = [] if lung_mask is None else [{"op": "lung_mask", "model": LUNG_MODEL, **lung_mask}]
    return [
        {"op": "to_display", "invert_monochrome1": True},
        {"op": "percentile_scale", "low": 0.5, "high": 99.5},
        *mask,
        {"op": "lung_crop", "model": LUNG_MODEL, "margin": 0.08},
        # resize, not letterbox: a first model read the aspect ratio of the lung box from the
        # letterbox padding edge (its CAM sat on that edge, outside the lungs)
        {"op": "resize", "height": size, "width": size},
    ]


STEPS = steps_for(SIZE)
DEFAULTS = {"seed": 0, "size": SIZE, "filters": [16, 32, 64, 128], "epochs": 80, "batch": 16,
            "lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.3, "patience": 25, "max_minutes": 22.0,
            "threads": 2,
            # ai.train.augment.make_augmenter arguments
            "augment": {"rotation_deg": 10, "shift": 0.06, "zoom": [-0.15, 0.1], "gamma": 0.25,
                        "contrast": 0.2, "brightness": 0.08, "noise": 0.02, "fill_mode": "reflect"}}


def label_index(row) -> int:
    """0 = covid, 1 = other (the "other" and "normal" labels)."""
    return 0 if row["label"] == POSITIVE else 1


def prepare(data_dir, lungs_dir, steps=None, seed: int = 0):
    """Items, set names, inputs (N, H, W, 1), labels and transform records of all images."""
    from ai.train.data import preprocess
    from ai.train.lungs import load_segmenter

    items = read_items(data_dir)
    sets = np.array(grouped_split([i.row for i in items], seed=seed))
    segment = load_segmenter(lungs_dir)
    t0 = time.monotonic()
    x, _, records = preprocess(items, steps or STEPS, {"segment": segment})
    print(f"preprocessed {len(items)} images in {time.monotonic() - t0:.0f} s")
    y = np.array([label_index(i.row) for i in items])
    return items, sets, x, y, records


def val_auc_callback(x_val, y_val):
    """Adds `val_auc` (covid vs rest, numpy ROC AUC) to the epoch logs."""
    import keras

    from ai.train.stats import roc_auc

    class ValAuc(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            p = np.asarray(self.model(x_val, training=False))[:, 0]
            logs["val_auc"] = roc_auc(y_val == 0, p)
            print(f" val_auc {logs['val_auc']:.3f}")

    return ValAuc()


def train(data_dir, out_dir, lungs_dir, **options) -> dict:
    """Train the classifier; writes `model.keras` and `history.json` into `out_dir`."""
    command = options.pop("command", None)
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    keras = common.setup_tf(cfg["seed"], cfg["threads"])
    import tensorflow as tf

    from ai.train.augment import make_augmenter
    from ai.train.models import vgg_gap

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = cfg["size"]
    steps = steps_for(size, cfg.get("lung_mask"))
    items, sets, x, y, _ = prepare(data_dir, lungs_dir, steps, seed=cfg["seed"])
    tr, va = sets == "train", sets == "val"
    counts = np.bincount(y[tr], minlength=2)
    class_weight = {k: float(tr.sum() / (2 * counts[k])) for k in range(2)}
    print(f"{NAME}: {tr.sum()} train {counts.tolist()}, {va.sum()} val; weights {class_weight}")

    aug = {**DEFAULTS["augment"], **cfg["augment"]}
    augment = make_augmenter(cfg["seed"], **{**aug, "zoom": tuple(aug["zoom"])})
    onehot = np.eye(2, dtype=np.float32)[y]
    weights = np.array([class_weight[k] for k in y], dtype=np.float32)
    train_ds = (tf.data.Dataset.from_tensor_slices((x[tr], onehot[tr], weights[tr]))
                .shuffle(int(tr.sum()), seed=cfg["seed"], reshuffle_each_iteration=True)
                .batch(cfg["batch"])
                .map(lambda a, b, w: (augment(a), b, w))
                .prefetch(2))

    def build():
        return vgg_gap((size, size, 1), filters=tuple(cfg["filters"]), dropout=cfg["dropout"])

    model = build()
    model.compile(optimizer=keras.optimizers.AdamW(cfg["lr"], weight_decay=cfg["weight_decay"]),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    info = common.fit_and_save(model, build, train_ds, (x[va], onehot[va]), cfg,
                               [val_auc_callback(x[va], y[va])], "val_auc",
                               out / "model.keras", command)
    info.update({"n_train": int(tr.sum()), "n_val": int(va.sum()),
                 "train_counts": {"covid": int(counts[0]), "other": int(counts[1])},
                 "class_weight": {CLASSES[k]: v for k, v in class_weight.items()}})
    common.write_json(out / "history.json", info)
    return info


def cam_maps(model, x: np.ndarray, class_index: int | None = None, batch: int = 32):
    """(probabilities (N, 2), CAMs (N, H, W) in 0..1 on the model input grid (H, W) of `x`).

    Same arithmetic as the viewer (`ai.cam`): ReLU(sum_k w[k, c] A_k) / max, resized to the
    input grid; `class_index` None = the predicted class of each image.
    """
    import keras

    from ai import cam

    sub = keras.Model(model.inputs, [model.get_layer("last_conv").output, model.output])
    kernel = np.asarray(model.get_layer("predictions").get_weights()[0])
    probs, maps = [], []
    for start in range(0, len(x), batch):
        feats, p = sub(x[start:start + batch], training=False)
        feats, p = np.asarray(feats), np.asarray(p)
        for f, pk in zip(feats, p):
            c = int(np.argmax(pk)) if class_index is None else class_index
            heat = cam.class_activation_map(f, kernel, c)
            maps.append(cam.resize_to_input(heat, x.shape[1], x.shape[2]))
        probs.append(p)
    return np.concatenate(probs), np.stack(maps)


def _ci_mean(values, clusters, n_boot):
    from ai.train.stats import bootstrap_ci

    v = np.asarray(values, dtype=np.float64)
    return list(bootstrap_ci(lambda ix: float(v[ix].mean()), len(v), clusters, n_boot=n_boot))


def evaluate(model_dir, data_dir, lungs_dir, n_boot: int = 2000) -> dict:
    """Measure the shipped classifier on its held-out test set; rewrite model.json and card."""
    import keras

    from ai import transforms
    from ai.train import card, plots
    from ai.train.data import load_gray
    from ai.train.stats import (
        binary_metrics,
        bootstrap_ci,
        classification_report,
        confusion,
        mass_fraction_inside,
        roc_curve,
    )

    model_dir = Path(model_dir)
    info = common.read_json(model_dir / "history.json")
    cfg = info["config"]
    steps = steps_for(cfg.get("size", SIZE), cfg.get("lung_mask"))
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    items, sets, x, y, records = prepare(data_dir, lungs_dir, steps, seed=cfg["seed"])
    pipeline = transforms.build_pipeline(steps, {"segment": None})
    patients = np.array([i.row["patient_id"] for i in items])
    results: dict = {}
    for subset in ("val", "test"):
        sel = np.flatnonzero(sets == subset)
        probs, maps = cam_maps(model, x[sel])
        pos, score = y[sel] == 0, probs[:, 0]
        res = {}
        for key in ("accuracy", "sensitivity", "specificity", "auc"):
            res[key] = list(bootstrap_ci(
                lambda ix, k=key, t=pos, p=score: binary_metrics(t[ix], p[ix])[k], len(sel),
                patients[sel], n_boot=n_boot))
        res["confusion"] = confusion(pos, score >= 0.5)
        res["n_images"] = int(sel.size)
        res["n_patients"] = len(set(patients[sel]))
        res["n_covid"], res["n_other"] = int(pos.sum()), int((~pos).sum())
        res["report"] = classification_report(y[sel], probs.argmax(1), CLASSES)
        res["cam_in_lung"] = _cam_in_lung(items, sel, maps, records, pipeline, patients, n_boot,
                                          load_gray, mass_fraction_inside)
        results[subset] = res
        if subset == "test":
            fpr, tpr, _ = roc_curve(pos, score)
            c = res["confusion"]
            point = (c["fp"] / max(c["fp"] + c["tn"], 1), c["tp"] / max(c["tp"] + c["fn"], 1))
            plots.roc_plot(fpr, tpr, res["auc"], model_dir / "roc_test.png",
                           f"{NAME}: test set, covid vs other (n={sel.size})", point)
            _cam_figure(items, sel, maps, records, pipeline, probs, model_dir / "cam_test.png",
                        load_gray)
        print(subset, {k: v for k, v in res.items() if k != "report"})
        print(res["report"])
    plots.training_curves(info["history"], model_dir / "training_curves.png",
                          f"{NAME}: VGG-style GAP CNN (validation AUC selects the epoch)",
                          ["accuracy", "auc"], info["best_epoch"])
    info["split"] = split_text([i.row for i in items], sets, cfg["seed"])
    info["n_boot"] = n_boot
    info["cam_grid"] = "x".join(str(d) for d in model.get_layer("last_conv").output.shape[1:3])
    spec = _spec(info, results)
    card.write_spec(model_dir, spec)
    _card(model_dir, spec, info, results)
    return results


def _cam_in_lung(items, sel, maps, records, pipeline, patients, n_boot, load_gray, inside):
    """CAM mass inside the reference lung mask (original grid) vs two uniform-map baselines."""
    rows = []
    for j, k in enumerate(sel):
        if items[k].mask_path is None:
            continue
        truth = load_gray(items[k].mask_path) > 127
        cam_orig = pipeline.inverse_map(maps[j], records[k])
        ones = np.zeros_like(maps[j])  # a uniform map over the image part of the model input
        top, left, nr, nc = records[k].steps[-1].data.get("inner", (0, 0, *ones.shape))
        ones[top:top + nr, left:left + nc] = 1.0
        uniform_input = pipeline.inverse_map(ones, records[k]) > 0.5
        rows.append((patients[k], inside(cam_orig, truth), float(truth.mean()),
                     float(truth[uniform_input].mean())))
    if not rows:
        return {"n_images": 0}
    pid = [r[0] for r in rows]
    cam_f, area_f, box_f = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    return {
        "n_images": len(rows),
        "cam_fraction": _ci_mean(cam_f, pid, n_boot),
        "lung_area_fraction_image": _ci_mean(area_f, pid, n_boot),
        "lung_area_fraction_crop": _ci_mean(box_f, pid, n_boot),
        "cam_minus_crop_baseline": _ci_mean(cam_f - box_f, pid, n_boot),
        "images_cam_above_crop_baseline": float((cam_f > box_f).mean()),
    }


def _cam_figure(items, sel, maps, records, pipeline, probs, path, load_gray):
    from ai.train import plots

    chosen = [j for j, k in enumerate(sel) if items[k].mask_path is not None][:3]
    chosen += [j for j, k in enumerate(sel) if items[k].row["label"] != POSITIVE][:3]
    images, cams, titles, contours = [], [], [], []
    for j in chosen:
        k = sel[j]
        images.append(load_gray(items[k].image_path))
        cams.append(pipeline.inverse_map(maps[j], records[k]))
        contours.append(load_gray(items[k].mask_path) > 127 if items[k].mask_path else None)
        titles.append(f"{items[k].row['label']}: p(covid) {probs[j, 0]:.2f}")
    plots.overlays(images, cams, titles, path, contours=contours)


SPLIT_NOTE = (
    " The validation set picks the epoch; the test set is used only by `python -m ai evaluate`. "
    "Same split as cxr-lungs, so no cxr-lungs training image is a cxr-covid test image."
)


def _spec(info: dict, results: dict) -> dict:
    from ai.train import card
    from ai.train.data import CXR_CITATION

    tc, size = info["train_counts"], info["config"].get("size", SIZE)
    training = {
        "data": f"{CXR_CITATION} Labels: covid (COVID-19) vs other (the 'other' findings - "
                f"bacterial, viral, fungal pneumonias, ARDS... - and 'normal'). "
                f"{info['n_train']} training images ({tc['covid']} covid, {tc['other']} other), "
                f"{info['n_val']} validation images.",
        "split": info["split"] + SPLIT_NOTE,
        "command": info.get("command") or "python -m ai train classifier --data ../shared/data",
        "date": info["date"],
        "device": "CPU",
    }
    training.update({"epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                     "train_minutes": info["train_minutes"], "config": info["config"],
                     "class_weight": info["class_weight"]})
    metrics = {s: {k: v for k, v in r.items() if k != "report"} for s, r in results.items()}
    return {
        "format": 1, "name": NAME, "version": "1.0.0", "task": "classification",
        "modalities": ["CR", "DX", "OT"],
        "input": {"height": size, "width": size, "channels": 1},
        "preprocessing": steps_for(size, info["config"].get("lung_mask")),
        "classes": CLASSES,
        "positive_class": POSITIVE,
        "cam": {"method": "cam", "conv_layer": "last_conv", "dense_layer": "predictions"},
        "weights": {"file": "model.keras", "sha256": ""},
        "training": training,
        "metrics": {**metrics, "evaluated": card.today(),
                    "note": "[value, 95% CI low, high]: percentile bootstrap, "
                            f"{info['n_boot']} resamples of patients; threshold 0.5 on "
                            "p(covid); cam_in_lung: fraction of the "
                            "CAM (predicted class) mass inside the reference lung mask, images "
                            "with a mask in cxr-lung-masks only (all covid)"},
        "intended_use": card.INTENDED_USE + " A teaching/research demonstration of a CAM-"
                        "explained classifier; its output is not evidence of COVID-19.",
        "card": "MODEL_CARD.md",
    }


def _augment_text(cfg: dict) -> str:
    a = {**DEFAULTS["augment"], **cfg.get("augment", {})}
    return (f"rotation ±{a['rotation_deg']}°, shift ±{100 * a['shift']:.0f} %, zoom "
            f"{100 * a['zoom'][0]:+.0f} %..{100 * a['zoom'][1]:+.0f} % (negative = random crops), "
            f"gamma exp(±{a['gamma']}), contrast ±{100 * a['contrast']:.0f} %, brightness "
            f"±{a['brightness']}, Gaussian noise sigma up to {a['noise']}; pixels shifted in "
            f"from outside: {a.get('fill_mode', 'constant')}")


def _card(model_dir: Path, spec: dict, info: dict, results: dict) -> None:
    from ai.train import card

    cfg, tr = info["config"], spec["training"]
    size_kb = (model_dir / "model.keras").stat().st_size / 1024
    size = spec["input"]["height"]
    f = card.fmt_ci
    rows = [[s] + [f(results[s][k]) for k in ("auc", "accuracy", "sensitivity", "specificity")]
            + [f"{results[s]['n_images']} ({results[s]['n_covid']}/{results[s]['n_other']})"]
            for s in ("val", "test")]
    c = results["test"]["confusion"]
    cam_rows = []
    for s in ("val", "test"):
        r = results[s]["cam_in_lung"]
        if r.get("n_images"):
            cam_rows.append([s, r["n_images"], f(r["cam_fraction"]),
                             f(r["lung_area_fraction_image"]), f(r["lung_area_fraction_crop"]),
                             f(r["cam_minus_crop_baseline"]),
                             f"{100 * r['images_cam_above_crop_baseline']:.0f} %"])
    t = results["test"]
    chance = ("**The test AUC's 95% CI includes 0.5: on radiographs from papers/websites it never "
              "saw, this model is not distinguishable from chance. Do not use its predictions; "
              "it is shipped to exercise the classify/CAM pipeline.**"
              if t["auc"][1] <= 0.5 <= t["auc"][2] else "")
    cam_t = t["cam_in_lung"]
    cam_verdict = (
        f"On the test images with masks, {100 * cam_t['cam_fraction'][0]:.0f} % of the CAM mass "
        f"lies inside the lungs, against {100 * cam_t['lung_area_fraction_image'][0]:.0f} % for a "
        f"uniform map over the whole image and {100 * cam_t['lung_area_fraction_crop'][0]:.0f} % "
        f"for a uniform map over the crop: "
        + ("more lung than its own input holds, but" if cam_t["cam_minus_crop_baseline"][1] > 0
           else "no better than its own input,")
        + " a large part of the evidence still comes from outside the lungs (crop edges, "
        "labels and borders of the source figures, mediastinum, diaphragm).") if cam_t.get(
            "n_images") else ""
    verdict = (
        "meets" if t["auc"][0] >= 0.80 else "does **not** meet") + " the target AUC >= 0.80"
    card.write_card(model_dir, f"Model card: {NAME} (COVID-19 vs other, chest radiographs)", {
        "Model": f"""
Compact VGG-style CNN: {len(cfg['filters'])} blocks of two 3x3 convolutions
({', '.join(map(str, cfg['filters']))} filters, BatchNorm + ReLU, 2x2 max pooling between
blocks), the last convolution `last_conv` (ReLU) -> global average pooling -> dropout
{cfg['dropout']} -> dense softmax `predictions` over {CLASSES}. CAM-capable (Zhou et al. 2016).
{info['params']:,} parameters, `model.keras` {size_kb:.0f} KiB. Grayscale input {size}x{size}.

Lung-aware input: `to_display`, `percentile_scale` (0.5-99.5 %), `lung_crop` with the
`cxr-lungs` model (margin 8 % of the lung box), `resize {size}` (model.json). The crop
removes most of what identifies a source (borders, text, arrows outside the chest) and puts
the lungs at a fixed scale. `resize` rather than `letterbox`: a first model trained on
letterboxed crops put its CAM on the edge of the letterbox padding (it read the aspect ratio
of the lung box, not the lungs; test AUC 0.51).
""",
        "Intended use": f"""
{spec['intended_use']} Frontal (PA/AP) chest radiographs. Positive class: covid.
""",
        "Training data": f"""
{tr['data']}

Licences are per image (labels.csv `license`: CC BY, CC BY-NC-SA, CC BY-NC-ND, or unknown);
research use only.
""",
        "Split": tr["split"],
        "Training": f"""
Categorical cross-entropy with balanced class weights
({', '.join(f'{k} {v:.2f}' for k, v in info['class_weight'].items())}), AdamW
lr {cfg['lr']} (weight decay {cfg['weight_decay']}), batch {cfg['batch']}. Augmentation
on the fly: {_augment_text(cfg)}. The epoch with the best validation ROC AUC is kept (early
stopping, patience {cfg['patience']}): epoch {info['best_epoch']} of {info['epochs_run']} run,
{info['train_minutes']} min wall time on {tr['device']} (2 cores). Seed {cfg['seed']}.

Command: `{tr['command']}` (date {tr['date']}).

![training curves](training_curves.png)
""",
        "Metrics": f"""
Covid vs other, threshold 0.5 on p(covid); 95% CIs by percentile bootstrap over patients
({info['n_boot']} resamples). Validation picked the epoch, so its numbers are optimistic. The
test set chose neither the epoch nor the settings (the letterbox -> resize change followed
the first model's CAM failure, visible on the validation set too). The test AUC {verdict}.
{chance}

{card.markdown_table(['set', 'ROC AUC', 'accuracy', 'sensitivity', 'specificity',
                      'images (covid/other)'], rows)}

Test confusion matrix (rows: truth, columns: prediction):

{card.markdown_table(['', 'predicted covid', 'predicted other'],
                     [['covid', c['tp'], c['fn']], ['other', c['fp'], c['tn']]])}

Test classification report:

```
{t['report']}
```

![ROC, test set](roc_test.png)

Evaluated {spec['metrics']['evaluated']} with `python -m ai evaluate --model {NAME}
--data ../shared/data`.
""",
        "Where the model looks (CAM inside the lungs)": f"""
CAM of the predicted class (as the viewer shows it: ReLU, divided by its maximum, mapped back
onto the original image by the inverse transforms, zero outside the lung crop), fraction of
its mass inside the reference lung mask (cxr-lung-masks; only covid images have masks).
Baselines: a uniform map over the whole image puts the *lung area fraction of the image* inside
the lungs (the earlier plain model was no better than this: 37-42 % vs 37 %); a uniform map
over the model input puts the *lung fraction of the crop box* inside. Beating the second
baseline means the model prefers lung to the non-lung parts of its own input.

{card.markdown_table(['set', 'images', 'CAM mass in lungs', 'uniform (whole image)',
                      'uniform (crop box)', 'CAM - crop baseline', 'images above crop'],
                     cam_rows)}

{cam_verdict}

![CAM examples, test set](cam_test.png)
""",
        "Limits and known biases": """
- Tiny, unbalanced data: 427 covid vs 100 other/normal images, only 19 normals; the test set
  has 15 negative images, so specificity and AUC have wide intervals.
- Images come from papers and websites (figure crops, arrows, text, mixed exposure and
  resolution), mostly of severe, hospitalised cases; references are nearly pure in label, so a
  model can learn the publication style. Holding out whole references measures some of this,
  but not a shift to radiographs straight from a modality (DICOM, other hospitals).
- The lung crop depends on cxr-lungs, trained on covid images only; a failed lung mask gives
  a wrong crop.
- "other" mixes many diseases (bacterial, viral, fungal pneumonia, ARDS, ...) and a few normals:
  the model does not separate COVID-19 from other causes of pneumonia reliably and must not be
  used to rule COVID-19 in or out.
- CAM shows where evidence pooled, at {grid} resolution; it is not a lesion segmentation.
""".format(grid=info["cam_grid"]),
    })
