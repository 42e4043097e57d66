"""Small PNG figures for model cards (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: Mapping[str, Sequence[float]], path: Path, title: str,
                    metrics: Sequence[str], best_epoch: int | None = None) -> None:
    """Loss and each of `metrics`, train and/or validation (`val_` keys), per epoch."""
    plt = _plt()
    keys = ["loss", *metrics]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), dpi=90)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, keys):
        if key in history:
            ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls=":", label=f"kept (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def roc_plot(fpr: np.ndarray, tpr: np.ndarray, auc: Sequence[float], path: Path, title: str,
             operating_point: tuple[float, float] | None = None) -> None:
    """ROC curve with the AUC and its 95% CI in the legend, and the 0.5-threshold point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=90)
    ax.plot(fpr, tpr, lw=2, label=f"AUC {auc[0]:.2f} (95% CI {auc[1]:.2f}-{auc[2]:.2f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    if operating_point:
        ax.plot(*operating_point, "o", color="C3", label="threshold 0.5")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def overlays(images: Sequence[np.ndarray], maps: Sequence[np.ndarray], titles: Sequence[str],
             path: Path, contours: Sequence[np.ndarray | None] | None = None,
             cmap: str = "jet", alpha: float = 0.4) -> None:
    """A row of images with a heat map (or mask) overlaid and an optional contour."""
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), dpi=80, squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.imshow(images[k], cmap="gray")
        ax.imshow(maps[k], cmap=cmap, alpha=alpha)
        if contours is not None and contours[k] is not None:
            ax.contour(contours[k].astype(float), levels=[0.5], colors="w", linewidths=0.8)
        ax.set_title(titles[k], fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
