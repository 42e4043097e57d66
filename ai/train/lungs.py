"""cxr-lungs: a small U-Net segmenting both lungs on frontal chest radiographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai.train import common
from ai.train.data import read_items
from ai.train.split import grouped_split, split_text

NAME = "cxr-lungs"
SIZE = 256


def steps_for(size: int) -> list[dict]:
    """The model.json preprocessing list for a size x size input."""
    return [
        {"op": "to_display", "invert_monochrome1": True},
        {"op": "percentile_scale", "low": 0.5, "high": 99.5},
        {"op": "letterbox", "height": size, "width": size},
    ]


STEPS = steps_for(SIZE)
DEFAULTS = {"seed": 0, "size": SIZE, "base": 8, "depth": 4, "epochs": 80, "batch": 8, "lr": 1e-3,
            "patience": 12, "max_minutes": 22.0, "threads": 2}


def split_items(data_dir, seed: int = 0):
    """(items with lung masks, their set names): the collection-wide grouped split, so a lung
    test image is never a training image of either shipped model."""
    items = read_items(data_dir)
    sets = grouped_split([i.row for i in items], seed=seed)
    keep = [k for k, item in enumerate(items) if item.mask_path is not None]
    return [items[k] for k in keep], [sets[k] for k in keep]


def soft_dice_loss(y_true, y_pred):
    """1 - soft Dice of the lung channel (channel 1), over the batch."""
    import keras.ops as K

    t, p = y_true[..., 1], y_pred[..., 1]
    return 1.0 - (2.0 * K.sum(t * p) + 1.0) / (K.sum(t) + K.sum(p) + 1.0)


def lung_dice(y_true, y_pred):
    """Hard Dice of the lung channel (argmax), over the batch (a training metric)."""
    import keras.ops as K

    t = K.cast(K.argmax(y_true, axis=-1), "float32")
    p = K.cast(K.argmax(y_pred, axis=-1), "float32")
    return (2.0 * K.sum(t * p) + 1e-6) / (K.sum(t) + K.sum(p) + 1e-6)


def train(data_dir, out_dir, **options) -> dict:
    """Train the U-Net; writes `model.keras` and `history.json` into `out_dir`; returns info."""
    command = options.pop("command", None)
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    keras = common.setup_tf(cfg["seed"], cfg["threads"])
    import tensorflow as tf

    from ai.train.augment import make_augmenter
    from ai.train.data import preprocess
    from ai.train.models import unet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, sets = split_items(data_dir, cfg["seed"])
    size = cfg["size"]
    x, m, _ = preprocess(items, steps_for(size), with_masks=True)
    y = np.eye(2, dtype=np.float32)[m]
    tr = np.array([s == "train" for s in sets])
    va = np.array([s == "val" for s in sets])
    print(f"{NAME}: {tr.sum()} train, {va.sum()} val images")

    augment = make_augmenter(cfg["seed"], rotation_deg=10, shift=0.06, zoom=(-0.1, 0.1))
    train_ds = (tf.data.Dataset.from_tensor_slices((x[tr], y[tr]))
                .shuffle(int(tr.sum()), seed=cfg["seed"], reshuffle_each_iteration=True)
                .batch(cfg["batch"]).map(augment).prefetch(2))

    def build():
        return unet((size, size, 1), base=cfg["base"], depth=cfg["depth"])

    model = build()
    model.compile(optimizer=keras.optimizers.Adam(cfg["lr"]),
                  loss=lambda t, p: keras.losses.categorical_crossentropy(t, p)
                  + soft_dice_loss(t, p),
                  metrics=[lung_dice])
    plateau = keras.callbacks.ReduceLROnPlateau("val_lung_dice", mode="max", factor=0.5,
                                                patience=5)
    info = common.fit_and_save(model, build, train_ds, (x[va], y[va]),
                               {**cfg, "_extra_callbacks": [plateau]}, [], "val_lung_dice",
                               out / "model.keras", command)
    info.update({"n_train": int(tr.sum()), "n_val": int(va.sum())})
    common.write_json(out / "history.json", info)
    return info


def load_segmenter(model_dir):
    """`segment(model_name, image) -> bool mask` for `ai.transforms` lung_crop, in this process.

    Runs the lung model's own preprocessing on `image`, thresholds the lung probability mapped
    back onto the image grid (`Pipeline.inverse_map`) at 0.5. `model_name` is not looked up:
    the model in `model_dir` is used.
    """
    import keras

    from ai import transforms
    from ai.train.data import CXR_META

    model_dir = Path(model_dir)
    spec = common.read_json(model_dir / "model.json")
    model = keras.saving.load_model(model_dir / spec["weights"]["file"], safe_mode=True)
    pipeline = transforms.build_pipeline(spec["preprocessing"])

    def segment(model_name: str, image: np.ndarray) -> np.ndarray:
        x, record = pipeline.forward(image, CXR_META)
        prob = np.asarray(model(x[None, ..., None], training=False))[0, ..., 1]
        return pipeline.inverse_map(prob, record) > 0.5

    return segment


def evaluate(model_dir, data_dir, n_boot: int = 2000) -> dict:
    """Dice of the shipped model on its held-out test patients; rewrites model.json and card."""
    import keras

    from ai import transforms
    from ai.train import card, plots
    from ai.train.data import CXR_META, load_gray
    from ai.train.stats import bootstrap_ci, dice

    model_dir = Path(model_dir)
    info = common.read_json(model_dir / "history.json")
    cfg = info["config"]
    steps = steps_for(cfg.get("size", SIZE))
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    pipeline = transforms.build_pipeline(steps)
    items, sets = split_items(data_dir, cfg["seed"])

    results = {}
    examples = []
    for subset in ("val", "test"):
        chosen = [it for it, s in zip(items, sets) if s == subset]
        d_orig, d_in = [], []
        for item in chosen:
            image = load_gray(item.image_path)
            truth = load_gray(item.mask_path) > 127
            x, record = pipeline.forward(image, CXR_META)
            prob = np.asarray(model(x[None, ..., None], training=False))[0, ..., 1]
            pred = pipeline.inverse_map(prob, record) > 0.5
            d_orig.append(dice(pred, truth))
            geometry = transforms.build_pipeline([steps[-1]])
            t_in, _ = geometry.forward(truth.astype(np.float32), CXR_META)
            d_in.append(dice(prob > 0.5, t_in > 0.5))
            if subset == "test" and len(examples) < 5:
                examples.append((image, pred, truth, d_orig[-1]))
        patients = [it.row["patient_id"] for it in chosen]
        d_orig, d_in = np.array(d_orig), np.array(d_in)
        results[subset] = {
            "dice": list(bootstrap_ci(lambda ix, d=d_orig: float(d[ix].mean()), len(d_orig),
                                      patients, n_boot=n_boot)),
            "dice_model_grid": list(bootstrap_ci(lambda ix, d=d_in: float(d[ix].mean()),
                                                 len(d_in), patients, n_boot=n_boot)),
            "dice_median": float(np.median(d_orig)),
            "dice_min": float(d_orig.min()),
            "n_images": len(chosen),
            "n_patients": len(set(patients)),
        }
        print(subset, results[subset])

    plots.training_curves(info["history"], model_dir / "training_curves.png",
                          f"{NAME}: U-Net base {cfg['base']}", ["lung_dice"], info["best_epoch"])
    plots.overlays([e[0] for e in examples], [np.ma.masked_where(~e[1], e[1]) for e in examples],
                   [f"Dice {e[3]:.3f}" for e in examples], model_dir / "test_examples.png",
                   contours=[e[2] for e in examples], cmap="autumn", alpha=0.35)
    every = read_items(data_dir)
    info["split"] = split_text([i.row for i in every],
                               grouped_split([i.row for i in every], seed=cfg["seed"]), cfg["seed"])
    info["mask_counts"] = {n: sets.count(n) for n in ("train", "val", "test")}
    info["n_boot"] = n_boot
    spec = _spec(info, results)
    card.write_spec(model_dir, spec)
    _card(model_dir, spec, info, results)
    return results


def _spec(info: dict, results: dict) -> dict:
    from ai.train import card
    from ai.train.data import CXR_CITATION, MASK_CITATION

    cfg = info["config"]
    size = cfg.get("size", SIZE)
    training = {
        "data": f"{MASK_CITATION} Images: {CXR_CITATION} {info['n_train']} training and "
                f"{info['n_val']} validation images.",
        "split": info["split"] + SPLIT_NOTE + " With masks: " + ", ".join(
            f"{k} {v}" for k, v in info["mask_counts"].items()) + " images.",
        "command": info.get("command") or "python -m ai train lungs --data ../shared/data",
        "date": info["date"],
        "device": "CPU",
    }
    training.update({"epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                     "train_minutes": info["train_minutes"], "config": cfg})
    return {
        "format": 1, "name": NAME, "version": "1.0.0", "task": "segmentation",
        "modalities": ["CR", "DX", "OT"],
        "input": {"height": size, "width": size, "channels": 1},
        "preprocessing": steps_for(size),
        "labels": {"0": "background", "1": "lung"},
        "weights": {"file": "model.keras", "sha256": ""},
        "training": training,
        "metrics": {**results, "evaluated": card.today(),
                    "note": "dice = mean per-image Dice on the original pixel grid (prediction "
                            "mapped back by the inverse transforms, threshold 0.5); "
                            "[value, 95% CI low, high], bootstrap resampling patients"},
        "intended_use": card.INTENDED_USE + " Lung masks for cropping the input of other "
                        "research models and for measuring where a CAM looks.",
        "card": "MODEL_CARD.md",
    }


SPLIT_NOTE = (
    " The lung model uses the images of this split that have a mask; it is the split of "
    "cxr-covid too, so no cxr-lungs training image is a cxr-covid test image."
)


def _card(model_dir: Path, spec: dict, info: dict, results: dict) -> None:
    from ai.train import card

    cfg, tr = info["config"], spec["training"]
    size_kb = (model_dir / "model.keras").stat().st_size / 1024
    rows = [[s, card.fmt_ci(results[s]["dice"]), card.fmt_ci(results[s]["dice_model_grid"]),
             f"{results[s]['dice_median']:.3f}", f"{results[s]['dice_min']:.3f}",
             results[s]["n_images"], results[s]["n_patients"]] for s in ("val", "test")]
    card.write_card(model_dir, f"Model card: {NAME} (lung segmentation, chest radiographs)", {
        "Model": f"""
U-Net (Ronneberger et al. 2015) with {cfg['depth']} poolings, base {cfg['base']} filters,
BatchNorm + ReLU, per-pixel softmax over background/lung; {info['params']:,} parameters,
`model.keras` {size_kb:.0f} KiB. Input {cfg.get('size', SIZE)}² x 1 after `to_display`,
`percentile_scale` (0.5-99.5 %), `letterbox` (see model.json). Output channel 1 = lung
probability.
""",
        "Intended use": f"""
{spec['intended_use']} Frontal (PA/AP) chest radiographs only; both lungs as one label.
""",
        "Training data": f"""
{tr['data']}

Licences of the images are per image (see labels.csv `license`); the masks come from an
Apache-2.0 package. Only images that have a mask are used (all of them are labelled COVID-19).
""",
        "Split": tr["split"],
        "Training": f"""
Loss: categorical cross-entropy + (1 - soft Dice of the lung channel); Adam lr {cfg['lr']},
batch {cfg['batch']}, halved on a 5-epoch plateau of validation Dice; augmentation: rotation
±10°, shift ±6 %, zoom ±10 %, gamma/contrast/brightness. Early stopping on validation Dice
(patience {cfg['patience']}), best epoch kept: {info['best_epoch']} of {info['epochs_run']}
run, {info['train_minutes']} min wall time on {tr['device']} (2 cores). Seed {cfg['seed']}.

Command: `{tr['command']}` (date {tr['date']}).

![training curves](training_curves.png)
""",
        "Metrics": f"""
Mean per-image Dice with 95% bootstrap CIs ({info['n_boot']} resamples of patients).
"original grid" = the lung probability mapped back onto the original image by the inverse
transforms and thresholded at 0.5, compared with the original mask; "model grid" = on the
{spec['input']['height']}x{spec['input']['width']} model input (mask letterboxed the same way).

{card.markdown_table(['set', 'Dice (original grid)', 'Dice (model grid)', 'median', 'min',
                      'images', 'patients'], rows)}

Evaluated {spec['metrics']['evaluated']} with `python -m ai evaluate --model {NAME}
--data ../shared/data`. Test examples (prediction in colour, reference contour in white):

![test examples](test_examples.png)
""",
        "Limits and known biases": """
- All training images are COVID-19 cases from papers and websites (cropped figures, arrows,
  text, mixed exposures); no normal chests, no children, no lateral views.
- The reference masks are one annotator's; opacified lung and the retrocardiac lung may be
  drawn differently from other conventions.
- Dense consolidation, pleural effusion and devices can make the mask incomplete.
- Small test set (one collection, tens of patients): the CI reflects sampling of these
  patients, not a shift to other hospitals or DICOM radiographs straight from a modality.
""",
    })
