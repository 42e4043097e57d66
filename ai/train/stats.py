"""Metrics with bootstrap confidence intervals (numpy only, no scikit-learn)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive rates and thresholds, thresholds decreasing (ties merged)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / max(y.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~y).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); nan with one class only."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    i = 0
    while i < s.size:  # average ranks over ties
        j = i
        while j + 1 < s.size and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Binary confusion counts (positive = True)."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    return {"tp": int((y & p).sum()), "fn": int((y & ~p).sum()),
            "fp": int((~y & p).sum()), "tn": int((~y & ~p).sum())}


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5
                   ) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, ROC AUC of positive-class scores."""
    c = confusion(y_true, np.asarray(score) >= threshold)
    n = sum(c.values())
    pos, negs = c["tp"] + c["fn"], c["tn"] + c["fp"]
    return {"accuracy": (c["tp"] + c["tn"]) / n if n else float("nan"),
            "sensitivity": c["tp"] / pos if pos else float("nan"),
            "specificity": c["tn"] / negs if negs else float("nan"),
            "auc": roc_auc(y_true, score)}


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n_items: int,
                 clusters: Sequence | None = None, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """(point estimate, low, high): percentile bootstrap 1-alpha interval of `statistic`.

    `statistic(indices)` computes the measure on the items at `indices`. With `clusters`
    (e.g. patient ids, one per item) whole clusters are resampled, so correlated images of one
    patient are not counted as independent evidence. Resamples giving nan are dropped.
    """
    point = float(statistic(np.arange(n_items)))
    rng = np.random.default_rng(seed)
    if clusters is None:
        groups = [np.array([i]) for i in range(n_items)]
    else:
        labels = np.asarray(clusters)
        groups = [np.flatnonzero(labels == c) for c in dict.fromkeys(labels.tolist())]
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        value = statistic(np.concatenate([groups[g] for g in pick]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return point, float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def dice(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Dice overlap of two binary masks (1.0 when both are empty)."""
    a, b = np.asarray(mask_a).astype(bool), np.asarray(mask_b).astype(bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2 * (a & b).sum() / denom)


def mass_fraction_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of a non-negative map's total mass that lies inside the mask (nan if no mass).

    Negative values are clipped to 0 first (CAMs are shown after a ReLU).
    """
    m = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = m.sum()
    return float(m[np.asarray(mask).astype(bool)].sum() / total) if total > 0 else float("nan")


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> str:
    """Per-class precision/recall/F1/support table (class index i is names[i])."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    lines = [f"{'':>10} {'precision':>9} {'recall':>6} {'f1':>6} {'support':>7}"]
    for k, name in enumerate(names):
        tp = int(((p == k) & (y == k)).sum())
        prec = tp / max(int((p == k).sum()), 1)
        rec = tp / max(int((y == k).sum()), 1)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        lines.append(f"{name:>10} {prec:9.3f} {rec:6.3f} {f1:6.3f} {int((y == k).sum()):7d}")
    lines.append(f"{'accuracy':>10} {float((y == p).mean()):>23.3f} {y.size:7d}")
    return "\n".join(lines)
