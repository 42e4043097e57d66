"""Fine-tune a segmentation model on corrected label exports; write it as a new model version.

``python -m ai finetune segmentation --model ct-infection --masks DIR`` reads every
``DIR/<stem>.nii.gz`` (or ``.nii``) label export with its radview sidecar ``<stem>.json``
(:mod:`viewer.core.export.label_files`), loads the source series the sidecar names
(``source.series_uid`` in ``source.files_dir``, or in ``--images``), and maps the export's
label names onto the model's channels by name (case-insensitive; other labels count as
background; on a labelled slice, every pixel without one of the model's labels is trained as
background, so exports must be complete on the slices they touch). Training slices: every
slice holding one of the model's labels, plus a few slices without any of them that contain
aerated lung (< -500 HU over at least 5 % of the
slice, CT only) as negatives. Each slice goes through the model's own preprocessing
(``ModelSpec.pipeline``), so training inputs equal inference inputs; the labels follow the
same geometry (crop / letterbox / resize records of that run).

With at least :data:`MIN_HELD_OUT_SLICES` * 3 labelled slices, the last fifth of them (at least
2; a contiguous block in series order, so neighbouring slices do not leak) is held out, and the
Dice of the model before and after fine-tuning is measured there on the original grid.

The result is a new folder ``<name>-ft-<YYYYmmdd-HHMMSS>`` in the user models folder (or
``out_root``), version ``<base version>-ft.<n>``, with model.json, model.keras and its own
MODEL_CARD.md (the base card kept below). The base model is never modified; the folder
appears only once complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_HELD_OUT_SLICES = 2
EMPTY_PER_LABELLED = 0.25  # negatives: at most this many empty lung slices per labelled one


class FinetuneError(ValueError):
    """Fine-tuning cannot run (one-line message for the command line)."""


@dataclass
class Export:
    """One label export: its file, the series volume and the labels as model channels."""

    path: Path
    volume: object  # viewer.core.volume.Volume
    classes: np.ndarray  # uint8 (k, j, i): model channel per voxel
    matched: dict  # model channel -> export label names mapped to it


def resolve_model(model: str):
    """(ModelSpec, raw model.json dict) of a registered model name or a model folder."""
    from ai.model_spec import ModelSpec, ModelSpecError
    from ai.registry import Registry, UnknownModelError, WeightsError, verify_weights

    try:
        folder = Path(model)
        spec = (
            ModelSpec.load(folder) if (folder / "model.json").is_file() else Registry().get(model)
        )
        verify_weights(spec)
    except (ModelSpecError, UnknownModelError, WeightsError) as exc:
        raise FinetuneError(str(exc)) from None
    if spec.task != "segmentation":
        raise FinetuneError(f"model {spec.name!r} is a {spec.task} model, not a segmenter")
    raw = json.loads((spec.folder / "model.json").read_text(encoding="utf-8"))
    return spec, raw


def read_exports(masks_dir, labels: dict[int, str], images_dir=None) -> list[Export]:
    """Every label export in ``masks_dir`` with its series, labels mapped to ``labels``
    (model channel -> name). Raises FinetuneError naming the file on any problem."""
    from viewer.core.export.label_files import read_label_volume, sidecar_path
    from viewer.core.study_index import PathError, build_index, load_series

    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise FinetuneError(f"no such folder: {masks_dir}")
    files = sorted(
        p
        for p in masks_dir.iterdir()
        if p.name.lower().endswith((".nii.gz", ".nii")) and p.is_file()
    )
    if not files:
        raise FinetuneError(f"no .nii.gz/.nii label files in {masks_dir}")
    by_name = {name.strip().lower(): ch for ch, name in labels.items() if ch != 0}
    exports = []
    for path in files:
        side = sidecar_path(path)
        if not side.is_file():
            raise FinetuneError(f"{path.name}: no sidecar {side.name} (export it from radview)")
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FinetuneError(f"{side.name}: unreadable sidecar ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != "radview-labels":
            raise FinetuneError(f"{side.name}: not a radview-labels sidecar")
        source = doc.get("source") or {}
        uid = str(source.get("series_uid") or "")
        folder = Path(images_dir) if images_dir else Path(str(source.get("files_dir") or ""))
        if not str(folder) or str(folder) == "." or not folder.is_dir():
            raise FinetuneError(
                f"{side.name}: source folder {str(folder) or '(none)'!r} is missing (give --images)"
            )
        try:
            entry = build_index(folder).find(uid or None)
            volume = load_series(entry)
            labelmap = read_label_volume(path, volume)
        except (PathError, ValueError) as exc:
            raise FinetuneError(f"{path.name}: {exc}") from None
        lut = np.zeros(256, dtype=np.uint8)
        matched: dict[int, list[str]] = {}
        for value, segment in labelmap.segments.items():
            ch = by_name.get(segment.name.strip().lower())
            if ch is not None:
                lut[value] = ch
                matched.setdefault(ch, []).append(segment.name)
        if not matched:
            names = ", ".join(sorted(s.name for s in labelmap.segments.values())) or "none"
            want = ", ".join(n for ch, n in sorted(labels.items()) if ch != 0)
            raise FinetuneError(
                f"{path.name}: no label matches the model's ({want}); the export has: {names}"
            )
        exports.append(Export(path, volume, lut[labelmap.labels], matched))
    return exports


def to_model_grid(pipeline, record, classes2d: np.ndarray, n: int) -> np.ndarray:
    """Channel map (rows, cols) carried through the geometry of one pipeline run: one-hot
    channels cropped/resized like the image, then argmax (padding -> channel 0)."""
    from ai import transforms

    maps = [(classes2d == c).astype(np.float32) for c in range(n)]
    for step, rec in zip(pipeline.steps, record.steps):
        if step.op == "lung_crop":
            r0, r1, c0, c1 = rec.data["box"]
            maps = [m[r0:r1, c0:c1] for m in maps]
        elif step.op in ("letterbox", "resize"):
            maps = [step.forward(m, {}, {})[0] for m in maps]
        elif rec.in_shape != rec.out_shape:
            raise transforms.TransformError(f"{step.op}: cannot carry labels through it")
    stack = np.stack(maps, -1)
    out = np.argmax(stack, -1).astype(np.uint8)
    out[stack.sum(-1) < 0.5] = 0
    return out


def select_slices(export: Export, seed: int = 0) -> tuple[list[int], list[int]]:
    """(labelled slice indices, empty aerated-lung slice indices chosen as negatives)."""
    has = export.classes.reshape(export.classes.shape[0], -1).any(axis=1)
    labelled = [int(k) for k in np.flatnonzero(has)]
    empty = []
    if str(getattr(export.volume, "modality", "")).upper() == "CT" and not export.volume.is_color:
        arr = export.volume.array
        lung = [
            k
            for k in range(arr.shape[0])
            if not has[k] and float(((arr[k] < -500) & (arr[k] > -1000)).mean()) >= 0.05
        ]
        n = min(len(lung), int(np.ceil(EMPTY_PER_LABELLED * len(labelled))))
        if n:
            rng = np.random.default_rng(seed)
            empty = sorted(int(k) for k in rng.choice(lung, n, replace=False))
    return labelled, empty


def _meta(volume) -> dict:
    photometric = "MONOCHROME1" if getattr(volume, "invert_display", False) else "MONOCHROME2"
    return {"modality": str(getattr(volume, "modality", "") or ""), "photometric": photometric}


def build_arrays(exports, spec, picks):
    """x (N, H, W, C) and one-hot y (N, H, W, n) for ``picks`` = [(export, k), ...]."""
    pipeline = spec.pipeline()
    n = len(spec.labels)
    xs, ys = [], []
    for e, k in picks:
        x, record = pipeline.forward(np.asarray(e.volume.array[k], np.float32), _meta(e.volume))
        xs.append(np.repeat(x[..., None], spec.input.channels, axis=-1))
        ys.append(np.eye(n, dtype=np.float32)[to_model_grid(pipeline, record, e.classes[k], n)])
    return np.stack(xs).astype(np.float32), np.stack(ys)


def dice_on(model, spec, exports, picks) -> dict:
    """Pooled Dice per model label over ``picks`` on the original grid (None if absent in
    both the reference and the prediction), and their mean."""
    from ai.train.stats import dice

    pipeline = spec.pipeline()
    n = len(spec.labels)
    preds, truths = [], []
    for e, k in picks:
        x, record = pipeline.forward(np.asarray(e.volume.array[k], np.float32), _meta(e.volume))
        xb = np.repeat(x[None, ..., None], spec.input.channels, axis=-1)
        prob = np.asarray(model(xb, training=False))[0]
        back = np.stack([pipeline.inverse_map(prob[..., c], record) for c in range(n)])
        preds.append(np.argmax(back, 0).ravel())
        truths.append(e.classes[k].ravel())
    p, t = np.concatenate(preds), np.concatenate(truths)
    out = {}
    for c in range(1, n):
        out[spec.labels[c]] = dice(p == c, t == c) if ((p == c) | (t == c)).any() else None
    values = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(values)) if values else None
    return out


def _loss(n: int):
    import keras.ops as K

    def loss(y_true, y_pred):
        p = K.clip(y_pred, 1e-7, 1.0)
        ce = -K.mean(K.sum(y_true * K.log(p), axis=-1))
        d = [
            (2.0 * K.sum(y_true[..., c] * y_pred[..., c]) + 1.0)
            / (K.sum(y_true[..., c]) + K.sum(y_pred[..., c]) + 1.0)
            for c in range(1, n)
        ]
        return ce + 1.0 - sum(d) / len(d)

    return loss


def _new_identity(spec, root: Path) -> tuple[str, str]:
    """(folder/model name, version) of the fine-tuned model: ``<base>-ft-<time>`` and
    ``<base version>-ft.<n>`` (n counts the fine-tunes in the lineage)."""
    base = re.sub(r"-ft-\d{8}-\d{6}$", "", spec.name)
    m = re.match(r"^(.*)-ft\.(\d+)$", spec.version)
    version = f"{m.group(1)}-ft.{int(m.group(2)) + 1}" if m else f"{spec.version}-ft.1"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{base[: 64 - 19]}-ft-{stamp}"
    while (root / name).exists():
        time.sleep(1)
        name = f"{base[: 64 - 19]}-ft-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return name, version


def finetune_segmentation(
    model: str,
    masks_dir,
    images_dir=None,
    epochs: int = 8,
    lr: float = 2e-4,
    out_root=None,
    seed: int = 0,
    batch: int = 4,
    threads: int | None = 2,
    command: str | None = None,
) -> Path:
    """Fine-tune ``model`` (name or folder) on the exports in ``masks_dir``; returns the new
    model folder. BatchNorm layers stay frozen (few slices, small batches)."""
    from ai.registry import user_models_dirs
    from ai.train import common

    spec, raw = resolve_model(model)
    exports = read_exports(masks_dir, spec.labels, images_dir)
    labelled, empty = [], []
    for e in exports:
        lab, emp = select_slices(e, seed)
        labelled += [(e, k) for k in lab]
        empty += [(e, k) for k in emp]
    if not labelled:
        raise FinetuneError(f"no slice in {masks_dir} holds one of the model's labels")
    n_hold = (
        max(MIN_HELD_OUT_SLICES, len(labelled) // 5)
        if len(labelled) >= 3 * MIN_HELD_OUT_SLICES
        else 0
    )
    held = labelled[len(labelled) - n_hold :] if n_hold else []
    train_picks = labelled[: len(labelled) - n_hold] + empty

    keras = common.setup_tf(seed, threads)
    import tensorflow as tf

    from ai.backends.keras_backend import ModelLoadError, check_architecture
    from ai.train.augment import make_augmenter

    try:
        check_architecture(spec.weights_path)
    except ModelLoadError as exc:
        raise FinetuneError(str(exc)) from None
    net = keras.saving.load_model(spec.weights_path, compile=False, safe_mode=True)
    arch = net.to_json()  # architecture only (before compile): the saved file has no loss
    before = dice_on(net, spec, exports, held) if held else None
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    x, y = build_arrays(exports, spec, train_picks)
    augment = make_augmenter(
        seed,
        rotation_deg=5,
        shift=0.03,
        zoom=(-0.05, 0.05),
        gamma=0.1,
        contrast=0.1,
        brightness=0.03,
    )
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed)
        .batch(batch)
        .map(augment)
        .prefetch(2)
    )
    net.compile(optimizer=keras.optimizers.Adam(lr), loss=_loss(len(spec.labels)))
    start = time.monotonic()
    hist = net.fit(ds, epochs=epochs, verbose=2).history
    minutes = round((time.monotonic() - start) / 60, 2)
    after = dice_on(net, spec, exports, held) if held else None

    root = Path(out_root) if out_root else user_models_dirs()[0]
    root.mkdir(parents=True, exist_ok=True)
    name, version = _new_identity(spec, root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        net.trainable = True
        common.save_inference_model(
            net, lambda: keras.models.model_from_json(arch), tmp / spec.weights_file
        )
        for png in spec.folder.glob("*.png"):
            shutil.copy2(png, tmp / png.name)
        record = {
            "base": {"name": spec.name, "version": spec.version, "sha256": spec.weights_sha256},
            "exports": [
                {
                    "file": e.path.name,
                    "series_uid": e.volume.series_uid,
                    "matched": {spec.labels[c]: v for c, v in sorted(e.matched.items())},
                }
                for e in exports
            ],
            "n_labelled_slices": len(labelled),
            "n_empty_slices": len(empty),
            "n_train_slices": len(train_picks),
            "n_held_out_slices": len(held),
            "epochs": epochs,
            "lr": lr,
            "batch": batch,
            "seed": seed,
            "train_minutes": minutes,
            "final_loss": float(hist["loss"][-1]),
            "batchnorm": "frozen",
        }
        spec_out = _write_spec(tmp, raw, name, version, spec, record, before, after, command)
        _write_card(tmp, spec, spec_out, record, before, after)
        final = root / name
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_spec(folder, raw, name, version, spec, record, before, after, command) -> dict:
    from ai.train import card, common

    out = json.loads(json.dumps(raw))
    out.update({"name": name, "version": version, "card": "MODEL_CARD.md"})
    out["weights"] = {"file": spec.weights_file, "sha256": ""}
    out["training"] = {
        "fine_tuned": {
            **record,
            "date": datetime.date.today().isoformat(),
            "device": "CPU",
            "command": command or card.command_line(),
        },
        "base_training": raw.get("training", {}),
    }
    out["metrics"] = {
        "fine_tuning_held_out": {
            "before": before,
            "after": after,
            "n_slices": record["n_held_out_slices"],
            "note": "pooled Dice on the original grid",
        },
        "base_model": raw.get("metrics", {}),
    }
    written = card.write_spec(folder, out)
    common.write_json(folder / "finetune.json", record)
    return written


def _write_card(folder: Path, spec, out: dict, record: dict, before, after) -> None:
    from ai.train import card

    def fmt(d):
        if not d:
            return "n/a"
        return ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in d.items())

    files = "\n".join(
        f"- `{e['file']}` (series {e['series_uid']}): "
        + "; ".join(f"{k} <- {', '.join(v)}" for k, v in e["matched"].items())
        for e in record["exports"]
    )
    held = (
        f"Held out: the last {record['n_held_out_slices']} labelled slices (series order). "
        f"Dice before: {fmt(before)}. After: {fmt(after)}."
        if before
        else "Too few labelled slices for a held-out measurement: no before/after Dice."
    )
    base_card = spec.card_path.read_text(encoding="utf-8") if spec.card_path else "(none)"
    card.write_card(
        folder,
        f"Model card: {out['name']} (fine-tuned {spec.name})",
        {
            "Fine-tuning": f"""
Fine-tuned from `{spec.name}` version {spec.version} (weights sha256
{spec.weights_sha256[:16]}...) on {record["n_train_slices"]} slices:
{record["n_labelled_slices"] - record["n_held_out_slices"]} labelled and
{record["n_empty_slices"]} without labels (aerated lung, as negatives), {record["epochs"]}
epochs, Adam lr {record["lr"]}, BatchNorm frozen, {record["train_minutes"]} min on CPU.
Version {out["version"]}. Label exports:

{files}
""",
            "Held-out check": held
            + """
Fine-tuning data are few slices of few patients: the result is a local adaptation, not a
validated model; the base model's metrics below do not apply to it unchanged.
""",
            "Base model card": ("\n" + base_card)
            .replace("\n# ", "\n### ")
            .replace("\n## ", "\n### "),
        },
    )
