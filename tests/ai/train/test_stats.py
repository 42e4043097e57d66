"""Metrics and bootstrap intervals on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ai.train.stats import (
    binary_metrics,
    bootstrap_ci,
    classification_report,
    confusion,
    dice,
    mass_fraction_inside,
    roc_auc,
    roc_curve,
)


def test_bootstrap_ci_of_a_constant_is_the_constant():
    v = np.full(50, 0.9)
    assert bootstrap_ci(lambda ix: float(v[ix].mean()), v.size, n_boot=200) == (0.9, 0.9, 0.9)


def test_bootstrap_ci_of_a_proportion_matches_the_normal_approximation():
    v = np.r_[np.ones(300), np.zeros(100)]  # p = 0.75, n = 400
    point, low, high = bootstrap_ci(lambda ix: float(v[ix].mean()), v.size, n_boot=2000, seed=1)
    half = 1.96 * math.sqrt(0.75 * 0.25 / 400)  # 0.042
    assert point == 0.75
    assert low == pytest.approx(0.75 - half, abs=0.01)
    assert high == pytest.approx(0.75 + half, abs=0.01)


def test_cluster_bootstrap_resamples_whole_clusters():
    # two clusters, each internally constant: every resample is 0, 0.5 or 1 -> wide interval
    v = np.r_[np.zeros(10), np.ones(10)]
    clusters = ["a"] * 10 + ["b"] * 10
    point, low, high = bootstrap_ci(lambda ix: float(v[ix].mean()), v.size, clusters, n_boot=500)
    assert point == 0.5 and low == 0.0 and high == 1.0


def test_roc_auc_known_values_and_ties():
    y = np.array([1, 1, 0, 0])
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert roc_auc(y, np.array([0.9, 0.3, 0.5, 0.1])) == 0.75
    assert math.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    fpr, tpr, _ = roc_curve(y, np.array([0.9, 0.3, 0.5, 0.1]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)


def test_binary_metrics_and_confusion():
    y = np.array([1, 1, 1, 0, 0])
    score = np.array([0.9, 0.6, 0.2, 0.7, 0.1])
    assert confusion(y, score >= 0.5) == {"tp": 2, "fn": 1, "fp": 1, "tn": 1}
    m = binary_metrics(y, score)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    report = classification_report(np.array([0, 0, 1]), np.array([0, 1, 1]), ["covid", "other"])
    assert "covid" in report and "other" in report


def test_dice():
    a = np.zeros((10, 10), bool)
    b = a.copy()
    a[:5] = True
    b[:, :5] = True
    assert dice(a, a) == 1.0
    assert dice(a, b) == pytest.approx(0.5)  # 25 shared pixels of 50 + 50
    assert dice(a & False, b & False) == 1.0


def test_cam_mass_in_lung_fraction():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 2:8] = True  # "left lung"
    mask[5:15, 12:18] = True  # "right lung"
    uniform = np.ones((20, 20))
    assert mass_fraction_inside(uniform, mask) == pytest.approx(mask.mean())  # the baseline
    in_lung = mask * 2.0 - 1.0  # negative outside: clipped away like a ReLU'd CAM
    assert mass_fraction_inside(in_lung, mask) == 1.0
    half = np.zeros((20, 20))
    half[10, 4] = 1.0  # in the lung
    half[0, 0] = 1.0  # outside
    assert mass_fraction_inside(half, mask) == 0.5
    assert math.isnan(mass_fraction_inside(np.zeros((20, 20)), mask))
