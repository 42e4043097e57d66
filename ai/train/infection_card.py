"""Figures, split text and MODEL_CARD.md of the ct-infection model (see ai.train.infection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

METRICS_NOTE = (
    "Grouped 5-fold cross-validation, each fold's model trained from scratch with the shipped "
    "recipe on the other folds (no early stopping, nothing tuned on the held-out fold). Dice per "
    "slice on the original pixel grid (softmax mapped back by the inverse letterbox, argmax), "
    "averaged over the slices whose reference has the class; mean_dice = (GGO + consolidation) / "
    "2; infection_dice = GGO and consolidation as one label; *_pooled_dice = one Dice over all "
    "pixels of all held-out slices. [value, 95% CI low, high]: percentile bootstrap resampling "
    "patient groups. Per fold: point values."
)
COLOURS = {1: (0.1, 0.9, 0.2), 2: (1.0, 0.15, 0.1)}  # GGO green, consolidation red


def split_text(cv: dict) -> str:
    cfg = cv["config"]
    sizes = [sum(s["fold"] == k for s in cv["slices"]) for k in range(cfg["folds"])]
    return (
        f"No patient ids in the data: slices were grouped heuristically into {cv['n_groups']} "
        f"groups (same crop size within 3 px, or standardised 48x48 thumbnails correlating "
        f">= {cfg.get('group_min_corr', 0.8)}, linked transitively; "
        "ai.train.infection.group_slices), and whole groups were "
        f"dealt into {cfg['folds']} folds (seed {cfg['seed']}; fold sizes "
        f"{', '.join(map(str, sizes))}). Same-patient slices the heuristic misses can sit in two "
        "folds, which would flatter the CV. The shipped model is trained on all slices."
    )


def _overlay(ax, image, labels, truth=None, title=""):
    rgb = np.repeat((np.clip(image, 0, 255) / 255.0)[..., None], 3, axis=-1)
    for label, colour in COLOURS.items():
        sel = labels == label
        rgb[sel] = 0.55 * rgb[sel] + 0.45 * np.asarray(colour)
    ax.imshow(rgb)
    if truth is not None:
        for label, colour in COLOURS.items():
            if (truth == label).any():
                ax.contour(
                    (truth == label).astype(float), levels=[0.5], colors=[colour], linewidths=0.7
                )
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def plots(
    model_dir: Path, info: dict, cv: dict, slices, cv_dir: Path, model, data_dir, size: int
) -> None:
    """training_curves.png, cv_examples.png (held-out CV predictions, worst/median/best) and
    real_ct_examples.png (the shipped model on real HU slices from ct-slices)."""
    from ai.train import plots as P

    plt = P._plt()
    P.training_curves(
        info["history"],
        model_dir / "training_curves.png",
        f"ct-infection: U-Net base {info['config']['base']}, all slices",
        ["infection_dice"],
        None,
    )
    preds = np.load(Path(cv_dir) / "cv_predictions.npz")
    by_stem = {s.stem: s for s in slices}
    ranked = sorted(
        (s for s in cv["slices"] if s["infection"] is not None), key=lambda s: s["infection"]
    )
    pick = [ranked[i] for i in np.linspace(0, len(ranked) - 1, 6).round().astype(int)]
    fig, axes = plt.subplots(1, 6, figsize=(14, 2.8), dpi=80)
    for ax, s in zip(axes, pick):
        sl = by_stem[s["stem"]]
        g, c = s["ggo"], s["consolidation"]
        title = (
            f"#{s['stem']} GGO {'-' if g is None else f'{g:.2f}'} "
            f"cons {'-' if c is None else f'{c:.2f}'}"
        )
        _overlay(ax, sl.image, preds[s["stem"]], sl.mask, title)
    fig.suptitle(
        "held-out CV predictions (fill: GGO green, consolidation red; "
        "lines: reference), worst to best",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(model_dir / "cv_examples.png")
    plt.close(fig)
    _real_ct(model_dir / "real_ct_examples.png", model, data_dir, size, plt)


def _real_ct(path: Path, model, data_dir, size: int, plt) -> None:
    import pydicom

    from ai import transforms
    from ai.train.infection_data import HU_WINDOW, steps_for

    files = sorted(p for p in Path(data_dir, "ct-slices").rglob("*") if p.is_file())[:8:2]
    if not files:
        return
    pipeline = transforms.build_pipeline(steps_for(size))
    fig, axes = plt.subplots(1, len(files), figsize=(2.6 * len(files), 2.9), dpi=80, squeeze=False)
    for ax, f in zip(axes[0], files):
        ds = pydicom.dcmread(f)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        x, rec = pipeline.forward(hu.astype(np.float32), {"modality": "CT"})
        prob = np.asarray(model(x[None, ..., None], training=False))[0]
        labels = np.argmax(np.stack([pipeline.inverse_map(prob[..., c], rec) for c in range(3)]), 0)
        shown = np.clip((hu - (HU_WINDOW[0] - HU_WINDOW[1] / 2)) / HU_WINDOW[1], 0, 1) * 255
        _overlay(ax, shown, labels, None, f.parent.parent.name if f.parent.name else f.name)
    fig.suptitle(
        f"real CT in HU (ct-slices, window {HU_WINDOW[0]:.0f}/{HU_WINDOW[1]:.0f}): "
        "qualitative only, no reference",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(model_dir: Path, spec: dict, info: dict, cv: dict, overall: dict) -> None:
    from ai.train import card

    cfg, tr = info["config"], spec["training"]
    win = tr["hu_window_estimate"]
    cp, wp = win["centre_percentiles"], win["width_percentiles"]
    post = next(p for p in spec["postprocessing"] if p["op"] == "within_lungs")
    size_kb = (model_dir / "model.keras").stat().st_size / 1024
    fmt = card.fmt_ci
    rows = [
        [
            f"fold {f['fold'] + 1}",
            f["n_slices"],
            f"{f['ggo_dice']:.3f}",
            f"{f['consolidation_dice']:.3f}",
            f"{f['mean_dice']:.3f}",
            f"{f['infection_dice']:.3f}",
            f"{f['epochs_run']} / {f['train_minutes']}",
        ]
        for f in cv["folds"]
    ]
    rows.append(
        [
            "all (95% CI)",
            overall["n_slices"],
            fmt(overall["ggo_dice"]),
            fmt(overall["consolidation_dice"]),
            fmt(overall["mean_dice"]),
            fmt(overall["infection_dice"]),
            "",
        ]
    )
    head = ["", "slices", "GGO Dice", "consolidation Dice", "mean", "infection", "epochs / min"]
    c, w = spec["preprocessing"][0]["center"], spec["preprocessing"][0]["width"]
    card.write_card(
        model_dir,
        "Model card: ct-infection (GGO and consolidation, chest CT)",
        {
            "Model": f"""
U-Net (Ronneberger et al. 2015), {cfg["depth"]} poolings, base {cfg["base"]} filters,
BatchNorm + ReLU, per-pixel softmax over background / ground-glass opacity / consolidation;
{info["params"]:,} parameters, `model.keras` {size_kb:.0f} KiB. Input {cfg["size"]}² x 1:
`window` centre {c:.0f} HU, width {w:.0f} HU (to 0..1) on CT, x / 255 on 8-bit pictures, then
`letterbox` (see model.json).
""",
            "Intended use": f"""
{spec["intended_use"]} One axial CT slice at a time, adult chest, lung kernel or similar,
image in Hounsfield units. The output is a draft for an annotator to correct, not a finding.
""",
            "Training data": f"""
{tr["data"]}

Every image was transposed back to radiological display (rows x columns of an axial DICOM
slice: anterior up, patient's left on the image right) before training; the masks too.
""",
            "Split": tr["split"],
            "Training": f"""
Loss: class-weighted categorical cross-entropy (weights background/GGO/consolidation
{cfg["class_weights"]}) + 1 - mean soft Dice of GGO and consolidation. Adam, learning rate
{cfg["lr"]} with cosine decay to 5 % over {cfg["epochs"]} epochs or a time budget, whichever
ends first ({cfg["max_minutes"]} min per CV fold, {cfg.get("final_max_minutes", "-")} min for
the shipped model: on a shared CPU every run still ends annealed), batch {cfg["batch"]}; no
early stopping (the last weights are kept, as in every CV fold). Augmentation: left/right flip,
rotation ±12°, shift ±6 %, zoom -15..+35 % (zoomed out, to resemble full DICOM fields of
view), gamma, contrast, brightness, Gaussian noise. {info["epochs_run"]} epochs,
{info["train_minutes"]} min on {tr["device"]} (2 cores). Seed {cfg["seed"]}.

Command: `{tr["command"]}` (date {tr["date"]}).

![training curves](training_curves.png)
""",
            "Metrics": f"""
{METRICS_NOTE}

{card.markdown_table(head, rows)}

Slices with the class in the reference: GGO {overall["n_with"]["ggo"]}, consolidation
{overall["n_with"]["consolidation"]} of {overall["n_slices"]}. Pooled Dice over all held-out
pixels: GGO {fmt(overall["ggo_pooled_dice"])}, consolidation
{fmt(overall["consolidation_pooled_dice"])}. The target of the issue was a mean Dice of 0.70.
Inf-Net (Fan et al. 2020) reports a Dice of about 0.68 for infection as one label, trained on
these 50 slices and tested on other slices of the same collection: compare it with the
`infection` column (a different protocol: their test split, their Dice averaging). The
numbers describe these 50 slices; they do not predict performance on another hospital's
scans.

![held-out CV predictions](cv_examples.png)
""",
            "HU window": f"""
The training images are 8-bit pictures with a lung window already applied, not HU. The
window that maps real CT to the same range was estimated from two landmarks: the aerated lung
mode ({win["hu_lung_mode"]:.0f} HU) and the soft-tissue (mostly fat) mode
({win["hu_tissue_mode"]:.0f} HU) measured on the {win["n_dicom"]} real `ct-slices` DICOMs,
against the same modes in each training image. Per image, the centre is {cp["50"]:.0f} HU
(10-90 %: {cp["10"]:.0f} to {cp["90"]:.0f}) and the width {wp["50"]:.0f} HU (10-90 %:
{wp["10"]:.0f} to {wp["90"]:.0f}): the sources windowed differently, which the contrast and
gamma augmentation partly covers. The shipped `window` uses centre {c:.0f}, width {w:.0f}.

8-bit pictures (PNG/JPEG, modality OT) are already windowed: model.json gives them x / 255
(`window` centre 128, width 256, limited to OT) instead of the HU window (limited to CT).

![real CT examples](real_ct_examples.png)
""",
            "Limits and known biases": f"""
- Trained on 50 slices from about 40 patients (COVID-19, 2020), from JPEG figures with
  varying windows and compression, some with annotation marks (arrows, crosses); cropped to
  the body, while real DICOM slices include the table and air around the body.
- The HU window is an estimate; a different reconstruction kernel or window shifts the
  intensities the model sees. The real-CT figure is qualitative: there is no reference.
- Not validated on whole volumes: each slice is segmented independently (no 3D context);
  slices near the diaphragm and apices were rare in training. Trained on COVID-19 only: on
  a whole series of a patient with lung cancer (ct-series, Lung-PET-CT-Dx A0001) it marked
  the tumour and dependent lung bases as GGO/consolidation; it knows no other disease.
- model.json `postprocessing` keeps findings within {post["dilate_mm"]:g} mm of the ct-lungs
  mask and touching it (whole CT volumes in HU); without it, soft tissue of the arms was
  marked as consolidation on real slices (see the figure above). The CV metrics do not
  include it.
- Inputs: CT in HU gets the HU `window`; a PNG/JPEG picture (modality OT) is taken as an
  already lung-windowed 8-bit slice (x / 255, as in training) and is not restricted to the
  lungs (`ct-lungs` needs HU). A picture windowed differently gives other results.
- Reference masks come from one annotation effort; the GGO/consolidation boundary is
  subjective, and consolidation is the harder, rarer class.
""",
        },
    )
